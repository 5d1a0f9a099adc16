/* See include/cmpi.h. Declarations follow Open MPI 4.x / 5.x mpi.h: handles are pointers to
 * opaque structs, MPI_IN_PLACE is (void *)1, MPI_STATUS(ES)_IGNORE is NULL. */
#include "cmpi.h"
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void *Handle;
#define AX_IN_PLACE ((void *)1)
#define AX_THREAD_FUNNELED 1
#define AX_MAX_ERROR_STRING 256

static void *lib;
static Handle comm_world, dt_float, dt_double, op_sum, errors_return;
static int (*p_init_thread)(int *, char ***, int, int *);
static int (*p_initialized)(int *);
static int (*p_finalize)(void);
static int (*p_comm_rank)(Handle, int *);
static int (*p_comm_size)(Handle, int *);
static int (*p_comm_set_errhandler)(Handle, Handle);
static int (*p_error_string)(int, char *, int *);
static int (*p_abort)(Handle, int);
static double (*p_wtime)(void);
static int (*p_barrier)(Handle);
static int (*p_allreduce)(const void *, void *, int, Handle, Handle, Handle);
static int (*p_iallreduce)(const void *, void *, int, Handle, Handle, Handle, Handle *);
static int (*p_test)(Handle *, int *, void *);
static int (*p_wait)(Handle *, void *);
static int (*p_allgather)(const void *, int, Handle, void *, int, Handle, Handle);

#define NEED(var, name) do { *(void **)(&var) = dlsym(lib, name); \
    if (!var) { snprintf(err, errlen, "%s has no symbol %s (not Open MPI?)", used, name); dlclose(lib); lib = NULL; return -1; } } while (0)

int axial_mpi_load(const char *path, char *err, size_t errlen) {
    if (lib) return 0;
    const char *env = getenv("AXIAL_MPI_LIBRARY");
    const char *candidates[] = { path, env && *env ? env : NULL, "libmpi.so.40", "libmpi.so" };
    const char *used = NULL;
    char last[512] = "";
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (!candidates[i]) continue;
        lib = dlopen(candidates[i], RTLD_NOW | RTLD_GLOBAL);
        if (lib) { used = candidates[i]; break; }
        const char *e = dlerror();
        snprintf(last, sizeof last, "%s", e ? e : candidates[i]);
    }
    if (!lib) {
        snprintf(err, errlen, "cannot load Open MPI's libmpi (install openmpi-bin libopenmpi-dev, or set AXIAL_MPI_LIBRARY): %s", last);
        return -1;
    }
    NEED(comm_world, "ompi_mpi_comm_world");
    NEED(dt_float, "ompi_mpi_float");
    NEED(dt_double, "ompi_mpi_double");
    NEED(op_sum, "ompi_mpi_op_sum");
    NEED(errors_return, "ompi_mpi_errors_return");
    NEED(p_init_thread, "MPI_Init_thread");
    NEED(p_initialized, "MPI_Initialized");
    NEED(p_finalize, "MPI_Finalize");
    NEED(p_comm_rank, "MPI_Comm_rank");
    NEED(p_comm_size, "MPI_Comm_size");
    NEED(p_comm_set_errhandler, "MPI_Comm_set_errhandler");
    NEED(p_error_string, "MPI_Error_string");
    NEED(p_abort, "MPI_Abort");
    NEED(p_wtime, "MPI_Wtime");
    NEED(p_barrier, "MPI_Barrier");
    NEED(p_allreduce, "MPI_Allreduce");
    NEED(p_iallreduce, "MPI_Iallreduce");
    NEED(p_test, "MPI_Test");
    NEED(p_wait, "MPI_Wait");
    NEED(p_allgather, "MPI_Allgather");
    return 0;
}

int axial_mpi_init(void) {
    int flag = 0, provided = 0;
    int rc = p_initialized(&flag);
    if (rc) return rc;
    if (!flag) {
        rc = p_init_thread(NULL, NULL, AX_THREAD_FUNNELED, &provided);
        if (rc) return rc;
    }
    return p_comm_set_errhandler(comm_world, errors_return);
}

int axial_mpi_rank(int *rank) { return p_comm_rank(comm_world, rank); }
int axial_mpi_size(int *size) { return p_comm_size(comm_world, size); }
int axial_mpi_finalize(void) { return p_finalize(); }
double axial_mpi_wtime(void) { return p_wtime(); }
int axial_mpi_barrier(void) { return p_barrier(comm_world); }

void axial_mpi_error_string(int code, char *buf, size_t len) {
    char s[AX_MAX_ERROR_STRING + 1];
    int n = 0;
    if (lib && p_error_string(code, s, &n) == 0) { s[n < AX_MAX_ERROR_STRING ? n : AX_MAX_ERROR_STRING] = 0; snprintf(buf, len, "%s (MPI error %d)", s, code); }
    else snprintf(buf, len, "MPI error %d", code);
}

void axial_mpi_abort(int code) {
    if (lib) p_abort(comm_world, code);
    _exit(code ? code : 1);
}

int axial_mpi_allreduce_sum_float(float *buffer, size_t count) {
    for (size_t off = 0; off < count;) {
        int n = count - off > INT_MAX ? INT_MAX : (int)(count - off);
        int rc = p_allreduce(AX_IN_PLACE, buffer + off, n, dt_float, op_sum, comm_world);
        if (rc) return rc;
        off += (size_t)n;
    }
    return 0;
}

int axial_mpi_allreduce_sum_double(double *buffer, size_t count) {
    for (size_t off = 0; off < count;) {
        int n = count - off > INT_MAX ? INT_MAX : (int)(count - off);
        int rc = p_allreduce(AX_IN_PLACE, buffer + off, n, dt_double, op_sum, comm_world);
        if (rc) return rc;
        off += (size_t)n;
    }
    return 0;
}

int axial_mpi_iallreduce_sum_float(float *buffer, size_t count, void **request) {
    if (count > INT_MAX) return -1;
    return p_iallreduce(AX_IN_PLACE, buffer, (int)count, dt_float, op_sum, comm_world, (Handle *)request);
}

int axial_mpi_test(void **request, int *done) { return p_test((Handle *)request, done, NULL); }
int axial_mpi_wait(void **request) { return p_wait((Handle *)request, NULL); }

int axial_mpi_allgather_float(const float *send, size_t count, float *recv) {
    if (count > INT_MAX) return -1;
    return p_allgather(send, (int)count, dt_float, recv, (int)count, dt_float, comm_world);
}

static char term_message[1024];
static size_t term_length;

static void on_termination(int sig) {
    if (term_length) { ssize_t w = write(2, term_message, term_length); (void)w; }
    _exit(128 + sig);
}

void axial_mpi_install_termination_message(const char *message) {
    size_t n = strlen(message);
    if (n >= sizeof term_message) n = sizeof term_message - 1;
    memcpy(term_message, message, n);
    term_message[n] = 0;
    term_length = n;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_termination;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}
