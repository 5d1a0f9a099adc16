// AxialModels
