// Empty: CNIfTI only carries the module map for libnifti2.
