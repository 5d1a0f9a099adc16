import Testing
@testable import AxialModels
