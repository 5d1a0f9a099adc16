import Testing
@testable import AxialTensor
