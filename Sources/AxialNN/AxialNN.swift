// AxialNN
