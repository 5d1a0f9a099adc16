/// A pointer that `parallelFor` bodies and worker threads may capture: the writer promises that
/// concurrent users touch disjoint elements (each worker its own rows or chunk).
public struct SendablePointer<T>: @unchecked Sendable {
    public let p: UnsafeMutablePointer<T>
    @inlinable public init(_ p: UnsafeMutablePointer<T>) { self.p = p }
    @inlinable public init(_ p: UnsafePointer<T>) { self.p = UnsafeMutablePointer(mutating: p) }
}
