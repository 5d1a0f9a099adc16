import Testing
@testable import AxialStore
