import AxialTestSupport
import Testing
@testable import AxialImaging
