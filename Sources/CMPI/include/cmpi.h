#ifndef AXIAL_CMPI_H
#define AXIAL_CMPI_H
/* A small shim over Open MPI's C API, loaded at run time (dlopen of libmpi.so.40), so that Axial
 * builds and runs without MPI and uses it when launched by mpirun / srun. Every function returns
 * an MPI error code (0 = MPI_SUCCESS) unless noted; axial_mpi_error_string turns one into text.
 * Predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_DOUBLE, MPI_SUM, MPI_ERRORS_RETURN) are the
 * addresses of Open MPI's globals (ompi_mpi_comm_world, …), looked up with dlsym — what mpi.h's
 * macros expand to. Counts may exceed INT_MAX: the shim splits them into int-sized calls. */
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Loads libmpi (path NULL: $AXIAL_MPI_LIBRARY, then libmpi.so.40, then libmpi.so) with
 * RTLD_GLOBAL (Open MPI's plugins resolve symbols from it). 0 on success; otherwise -1 and a
 * message in err. */
int axial_mpi_load(const char *path, char *err, size_t errlen);
/* MPI_Init_thread(MPI_THREAD_FUNNELED) + MPI_ERRORS_RETURN on MPI_COMM_WORLD (errors come back
 * as codes, the caller prints them and aborts). */
int axial_mpi_init(void);
int axial_mpi_rank(int *rank);
int axial_mpi_size(int *size);
int axial_mpi_finalize(void);
/* Writes the text of an MPI error code into buf (never fails). */
void axial_mpi_error_string(int code, char *buf, size_t len);
/* MPI_Abort(MPI_COMM_WORLD, code): mpirun stops every rank. Does not return. */
void axial_mpi_abort(int code);
double axial_mpi_wtime(void);
int axial_mpi_barrier(void);

/* In-place MPI_Allreduce(MPI_SUM) over count floats / doubles. */
int axial_mpi_allreduce_sum_float(float *buffer, size_t count);
int axial_mpi_allreduce_sum_double(double *buffer, size_t count);
/* Non-blocking in-place MPI_Iallreduce(MPI_SUM) over count floats (count ≤ INT_MAX). *request
 * receives an opaque MPI_Request. */
int axial_mpi_iallreduce_sum_float(float *buffer, size_t count, void **request);
/* MPI_Test / MPI_Wait on one request from axial_mpi_iallreduce_sum_float. */
int axial_mpi_test(void **request, int *done);
int axial_mpi_wait(void **request);
/* MPI_Allgather of count floats from every rank into recv (size × count, rank order). */
int axial_mpi_allgather_float(const float *send, size_t count, float *recv);

/* SIGTERM / SIGINT handler that writes `message` (copied) to stderr and _exits with 128+signal:
 * what a rank prints when mpirun stops it because another rank failed. */
void axial_mpi_install_termination_message(const char *message);

#ifdef __cplusplus
}
#endif
#endif
