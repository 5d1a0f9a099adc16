import Foundation

/// The reference-counted buffer behind a `Tensor`: `count` Float32 values, 64-byte aligned.
///
/// Never shared mutably: `Tensor`'s mutating APIs copy it first unless it is uniquely referenced.
public final class TensorStorage: @unchecked Sendable {
    /// Base address; valid for `count` elements for the lifetime of the storage.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of elements.
    public let count: Int

    /// Uninitialised storage of `count` floats (callers must write every element).
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "TensorStorage: negative count \(count)")
        self.count = count
        let bytes = Self.byteCount(count)
        let raw = LargeBlockCache.shared.take(bytes) ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: Swift.max(count, 1))
    }

    /// Bytes of the allocation (at least one element, so an empty tensor still has a valid pointer).
    private static func byteCount(_ count: Int) -> Int { Swift.max(count, 1) * MemoryLayout<Float>.stride }

    /// Storage filled with `value`.
    public convenience init(count: Int, repeating value: Float) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// A copy of another storage.
    public convenience init(copying other: TensorStorage) {
        self.init(uninitializedCount: other.count)
        pointer.update(from: other.pointer, count: other.count)
    }

    deinit {
        let raw = UnsafeMutableRawPointer(pointer)
        if !LargeBlockCache.shared.give(raw, bytes: Self.byteCount(count)) { raw.deallocate() }
    }
}

/// Freed tensor buffers of 32 MiB and more, kept by exact size for the next tensor of that size.
///
/// glibc serves such blocks with `mmap` and returns them to the kernel on `free` (its mmap
/// threshold cannot be set above 32 MiB), so a training step that allocates the same activations
/// every step (CLIPSeg at batch 8: MLP hiddens of 48 MB per layer, their gradients) had the kernel
/// fault in and zero every page again: `clear_page_erms` was 11 % of a dense-adapter step in `perf`.
/// Steps repeat their shapes, so exact-size reuse hits; at most `capacity` bytes (default 1 GiB,
/// `AXIAL_TENSOR_CACHE_MB`) are kept, the oldest given back first, and a miss frees as much as it
/// is about to allocate (see `take`), so the peak RSS does not grow when sizes do not repeat. Off (every block freed at once) with `AXIAL_MALLOC=system`
/// or under AddressSanitizer (its runtime linked in, or `ASAN_OPTIONS` set: reuse would hide a use-after-free).
final class LargeBlockCache: @unchecked Sendable {
    static let shared = LargeBlockCache(environment: ProcessInfo.processInfo.environment)
    static let minimumBytes = 32 << 20

    let capacity: Int
    private let lock = NSLock()
    /// The cached blocks, oldest first (at most capacity / 32 MiB of them: a linear scan is cheap).
    private var blocks: [(bytes: Int, pointer: UnsafeMutableRawPointer)] = []
    var cachedBytes: Int { lock.withLock { blocks.reduce(0) { $0 + $1.bytes } } }

    init(capacity: Int) { self.capacity = Swift.max(0, capacity) }

    convenience init(environment: [String: String]) {
        var capacity = 1 << 30
        if let s = environment["AXIAL_TENSOR_CACHE_MB"], let mb = Int(s), mb >= 0 { capacity = mb.multipliedReportingOverflow(by: 1 << 20).overflow ? Int.max : mb << 20 }
        if MemoryTuning.allocatorLeftAlone(environment: environment) || environment["ASAN_OPTIONS"] != nil { capacity = 0 }
        self.init(capacity: capacity)
    }

    /// A cached block of exactly `bytes` (64-byte aligned, contents undefined; the most recently
    /// given of that size), or nil. On a miss the oldest cached blocks, at least `bytes` of them,
    /// are freed first: the caller's fresh allocation then replaces memory the cache held, so live
    /// + cached bytes never exceed what they were (the peak RSS stays that of no cache; blocks of
    /// sizes that stopped recurring, such as initialisation temporaries, do not stay).
    func take(_ bytes: Int) -> UnsafeMutableRawPointer? {
        guard capacity > 0, bytes >= Self.minimumBytes else { return nil }
        lock.lock()
        if let i = blocks.lastIndex(where: { $0.bytes == bytes }) {
            let p = blocks.remove(at: i).pointer
            lock.unlock()
            return p
        }
        let evicted = evictOldest(atLeast: bytes)
        lock.unlock()
        for e in evicted { e.deallocate() }
        return nil
    }

    /// Keeps a block allocated by `TensorStorage` (true), or declines it (false: the caller frees it).
    func give(_ p: UnsafeMutableRawPointer, bytes: Int) -> Bool {
        guard capacity > 0, bytes >= Self.minimumBytes, bytes <= capacity else { return false }
        lock.lock()
        let evicted = evictOldest(atLeast: blocks.reduce(0) { $0 + $1.bytes } + bytes - capacity)
        blocks.append((bytes, p))
        lock.unlock()
        for e in evicted { e.deallocate() }
        return true
    }

    /// Removes the oldest blocks until at least `bytes` are removed (or none is left), with the
    /// lock held; the caller frees the returned pointers after unlocking.
    private func evictOldest(atLeast bytes: Int) -> [UnsafeMutableRawPointer] {
        var evicted: [UnsafeMutableRawPointer] = [], freed = 0
        while freed < bytes, !blocks.isEmpty {
            let old = blocks.removeFirst()
            freed += old.bytes
            evicted.append(old.pointer)
        }
        return evicted
    }

    /// Frees every cached block.
    func drain() {
        lock.lock()
        let all = blocks.map(\.pointer)
        blocks = []
        lock.unlock()
        for p in all { p.deallocate() }
    }
}

/// An n-dimensional Float32 array, contiguous and row-major, with value semantics (copy-on-write).
///
/// A tensor may take part in reverse-mode autodiff: `requiringGrad()` makes it a leaf whose
/// gradient accumulates in `grad` after `backward()` on a result computed from it. Copies of a
/// tensor share its graph node, so a copy held elsewhere (a module parameter) sees the same `grad`.
///
/// ```swift
/// let w = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]).requiringGrad()
/// let loss = (w * w).sum()
/// loss.backward()
/// w.grad!.scalars   // [2, 4, 6, 8]
/// ```
public struct Tensor: @unchecked Sendable {
    /// The shared buffer (copy-on-write through the mutating APIs).
    public internal(set) var storage: TensorStorage
    /// Sizes of each axis; `[]` for a scalar.
    public internal(set) var shape: [Int]
    /// The autodiff node: a leaf (accumulates `grad`) or an op output (holds a backward closure).
    /// `nil` when the tensor does not require a gradient.
    var node: GradNode?

    // MARK: Initialisers

    /// Wraps an existing storage (no copy). `storage.count` must equal the product of `shape`.
    public init(storage: TensorStorage, shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative size in shape \(shape)")
        precondition(storage.count == shape.reduce(1, *), "Tensor: storage of \(storage.count) elements does not fit shape \(shape)")
        self.storage = storage
        self.shape = shape
        self.node = nil
    }

    /// A tensor of `shape` whose elements are uninitialised; `body` must write all of them.
    @inlinable
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let n = shape.reduce(1, *)
        let s = TensorStorage(uninitializedCount: n)
        body(UnsafeMutableBufferPointer(start: s.pointer, count: n))
        self.init(storage: s, shape: shape)
    }

    /// A tensor with the given shape and row-major values (`scalars.count` must match the shape).
    public init(shape: [Int], scalars: [Float]) {
        let n = shape.reduce(1, *)
        precondition(scalars.count == n, "Tensor(shape: \(shape)) needs \(n) scalars, got \(scalars.count)")
        let s = TensorStorage(uninitializedCount: n)
        scalars.withUnsafeBufferPointer { src in
            if n > 0 { s.pointer.update(from: src.baseAddress!, count: n) }
        }
        self.init(storage: s, shape: shape)
    }

    /// A 1-D tensor holding `scalars`.
    public init(_ scalars: [Float]) { self.init(shape: [scalars.count], scalars: scalars) }

    /// A rank-0 tensor holding `scalar`.
    public init(_ scalar: Float) { self.init(storage: TensorStorage(count: 1, repeating: scalar), shape: []) }

    /// A tensor of `shape` filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(storage: TensorStorage(count: shape.reduce(1, *), repeating: value), shape: shape)
    }

    /// Zeros of the given shape.
    public init(zeros shape: [Int]) { self.init(repeating: 0, shape: shape) }

    /// Ones of the given shape.
    public init(ones shape: [Int]) { self.init(repeating: 1, shape: shape) }

    // MARK: Properties

    /// Number of elements.
    @inlinable public var count: Int { storage.count }
    /// Number of axes.
    @inlinable public var rank: Int { shape.count }
    /// A copy of the values in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// The single value of a one-element tensor.
    public func item() -> Float {
        precondition(count == 1, "item(): tensor of shape \(shape) has \(count) elements")
        return storage.pointer[0]
    }

    /// Normalises a possibly negative axis (`-1` = last) and checks it.
    @inlinable
    public func normalizedAxis(_ axis: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < Swift.max(rank, 1), "axis \(axis) out of range for shape \(shape)")
        return a
    }

    // MARK: Raw access

    /// Calls `body` with read-only access to the values.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Calls `body` with mutable access to the values, copying the storage first if it is shared
    /// (copy-on-write). Mutating a tensor does not touch the autodiff graph: mutate only tensors
    /// whose old value no recorded op still needs (parameters after `backward()`, fresh buffers).
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) { storage = TensorStorage(copying: storage) }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// A tensor with the same values and shape but a freshly allocated buffer and no graph.
    public func copy() -> Tensor { Tensor(storage: TensorStorage(copying: storage), shape: shape) }
}

extension Tensor: CustomStringConvertible {
    /// `Tensor[2, 3] [0.1, 0.2, …] (requiresGrad)` — the shape and up to the first 8 values.
    public var description: String {
        let shown = Swift.min(count, 8)
        var parts: [String] = []
        for i in 0..<shown { parts.append(String(format: "%.6g", storage.pointer[i])) }
        let more = count > shown ? ", … (\(count) values)" : ""
        let g = requiresGrad ? " (requiresGrad)" : ""
        return "Tensor\(shape) [\(parts.joined(separator: ", "))\(more)]\(g)"
    }
}

extension Tensor {
    /// Number of elements of a shape.
    @inlinable static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Row-major strides of a shape.
    @inlinable static func strides(of shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// A new uninitialised-by-contract tensor (filled with zeros for safety only when asked).
    @inlinable static func empty(_ shape: [Int]) -> Tensor {
        Tensor(storage: TensorStorage(uninitializedCount: shape.reduce(1, *)), shape: shape)
    }
}
