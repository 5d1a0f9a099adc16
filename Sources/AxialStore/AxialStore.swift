// AxialStore
