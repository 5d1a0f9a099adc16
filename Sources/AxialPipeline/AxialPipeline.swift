// AxialPipeline
