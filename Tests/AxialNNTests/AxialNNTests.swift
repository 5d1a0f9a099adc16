import Testing
@testable import AxialNN
