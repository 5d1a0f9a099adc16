import Testing
@testable import AxialPipeline
