import Testing
@testable import AxialImaging
