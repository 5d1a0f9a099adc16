// AxialTensor
