/// Reflect and replicate padding (torch.nn.functional.pad modes 'reflect' and 'replicate');
/// constant padding is `Tensor.padded(_:value:)` in Shape.swift.

/// How `padded(_:mode:)` fills the border.
public enum PaddingMode: Sendable, Equatable {
    /// A constant value (torch 'constant').
    case constant(Float)
    /// Mirror without repeating the edge: x[−1] = x[1] (torch 'reflect'; padding < size).
    case reflect
    /// Repeat the edge value: x[−1] = x[0] (torch 'replicate').
    case replicate
}

extension Tensor {
    /// Pads each axis i by `padding[i] = (before, after)` (missing trailing entries: no padding),
    /// filling as `mode` says. Note the axis order: pairs go from the first axis on (unlike F.pad,
    /// whose pairs start at the last axis). Gradient: scatter-add back through the index map.
    public func padded(_ padding: [(before: Int, after: Int)], mode: PaddingMode) -> Tensor {
        if case .constant(let v) = mode { return padded(padding, value: v) }
        precondition(padding.count <= rank, "pad: \(padding.count) pairs for shape \(shape)")
        var pads = padding
        while pads.count < rank { pads.append((0, 0)) }
        precondition(pads.allSatisfy { $0.before >= 0 && $0.after >= 0 }, "pad: negative padding \(padding)")
        let outShape = zip(shape, pads).map { $0 + $1.before + $1.after }
        // Source index along each axis for every output index.
        var maps: [[Int]] = []
        for (a, (n, p)) in zip(shape, pads).enumerated() {
            if mode == .reflect {
                precondition(p.before < n && p.after < n, "pad: reflect padding \(p) must be smaller than size \(n) of axis \(a) (shape \(shape))")
            } else {
                precondition(n > 0 || (p.before == 0 && p.after == 0), "pad: cannot replicate-pad empty axis \(a) of \(shape)")
            }
            maps.append((0..<(n + p.before + p.after)).map { o in
                var i = o - p.before
                if mode == .reflect {
                    if i < 0 { i = -i }
                    if i >= n { i = 2 * (n - 1) - i }
                } else {
                    i = Swift.min(Swift.max(i, 0), n - 1)
                }
                return i
            })
        }
        // Flat source offset of every output element.
        let inStrides = Tensor.strides(of: shape)
        let total = outShape.reduce(1, *)
        var offsets = [Int](repeating: 0, count: total)
        var idx = [Int](repeating: 0, count: rank)
        for e in 0..<total {
            var off = 0
            for a in 0..<rank { off += maps[a][idx[a]] * inStrides[a] }
            offsets[e] = off
            var a = rank - 1
            while a >= 0 { idx[a] += 1; if idx[a] < outShape[a] { break }; idx[a] = 0; a -= 1 }
        }
        return gathered(offsets: offsets, shape: outShape, name: "pad")
    }
}
