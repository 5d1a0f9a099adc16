import AxialTensor
import Foundation

/// Data-parallel gradient averaging (PyTorch DDP's scheme over any `Collective`).
///
/// `backward(loss, parameters:)` runs the backward pass; the trainable parameters are grouped
/// into buckets of at most `bucketElements` floats in reverse order (the backward reaches the
/// last layers first). As soon as every parameter of a bucket has its gradient
/// (`Tensor.backward(…, onLeafGradient:)`), the bucket is copied into one flat buffer and its
/// non-blocking all-reduce (sum) starts, overlapping with the rest of the backward; buckets that
/// are not complete when the backward ends (parameters the loss did not reach) start then, in
/// bucket order. Every rank launches the same buckets in the same order (the graph is the same on
/// every rank). After all complete, each gradient ← sum / worldSize (the average); a parameter
/// without a gradient on this rank keeps none (the same on every rank).
public final class DataParallel {
    public let collective: any Collective
    /// Floats per bucket (default 4 Mi = 16 MiB, in the range DDP uses).
    public let bucketElements: Int
    /// Gradient floats all-reduced by the last `backward`.
    public private(set) var lastGradientElements = 0
    /// Buckets of the last `backward`.
    public private(set) var lastBucketCount = 0
    /// Seconds of the last `backward` spent in collective calls (launching buckets and waiting for
    /// them after the backward pass; the part that overlapped with compute is not counted).
    public private(set) var lastCommunicationSeconds = 0.0

    public init(collective: any Collective, bucketElements: Int = 4 << 20) {
        precondition(bucketElements > 0, "DataParallel: bucketElements must be > 0")
        self.collective = collective; self.bucketElements = bucketElements
    }

    /// loss.backward() with the gradients of `parameters` averaged over the ranks.
    public func backward(_ loss: Tensor, parameters: [Parameter]) {
        let params = parameters.filter { $0.value.gradNode != nil }
        // Buckets in reverse parameter order.
        var buckets: [[Int]] = []
        var current: [Int] = [], size = 0
        for i in params.indices.reversed() {
            let n = params[i].count
            if !current.isEmpty && size + n > bucketElements { buckets.append(current); current = []; size = 0 }
            current.append(i); size += n
        }
        if !current.isEmpty { buckets.append(current) }
        var bucketOf = [ObjectIdentifier: Int]()
        for (b, members) in buckets.enumerated() {
            for i in members { bucketOf[ObjectIdentifier(params[i].value.gradNode!)] = b }
        }
        var ready = [Int](repeating: 0, count: buckets.count)
        var buffers = [UnsafeMutableBufferPointer<Float>?](repeating: nil, count: buckets.count)
        var requests = [CollectiveRequest?](repeating: nil, count: buckets.count)
        var communication = 0.0
        defer { for b in buffers { b?.deallocate() } }

        func launch(_ b: Int) {
            let members = buckets[b]
            let total = members.reduce(0) { $0 + params[$1].count }
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: total)
            var offset = 0
            for i in members {
                let n = params[i].count
                if let g = params[i].grad {
                    g.withUnsafeBufferPointer { src in (buffer.baseAddress! + offset).update(from: src.baseAddress!, count: n) }
                } else {
                    (buffer.baseAddress! + offset).update(repeating: 0, count: n)
                }
                offset += n
            }
            buffers[b] = buffer
            let t = Date()
            requests[b] = collective.startAllReduceSum(buffer)
            communication += Date().timeIntervalSince(t)
        }

        let seed = Tensor(repeating: 1, shape: loss.shape)
        loss.backward(gradient: seed, retainGraph: false) { node in
            guard let b = bucketOf[ObjectIdentifier(node)] else { return }
            ready[b] += 1
            if ready[b] == buckets[b].count { launch(b) }
            let outstanding = requests.compactMap { $0 }.filter { !$0.isComplete }
            if !outstanding.isEmpty { self.collective.progress(outstanding) }
        }
        for b in buckets.indices where requests[b] == nil { launch(b) }
        let t = Date()
        for r in requests { r?.wait() }
        communication += Date().timeIntervalSince(t)

        let scale = 1 / Float(collective.worldSize)
        var elements = 0
        for (b, members) in buckets.enumerated() {
            let buffer = buffers[b]!
            var offset = 0
            for i in members {
                let n = params[i].count
                if params[i].grad != nil {
                    let o = offset
                    params[i].grad = Tensor(shape: params[i].shape) { dst in
                        for k in 0..<n { dst[k] = buffer[o + k] * scale }
                    }
                }
                offset += n
            }
            elements += offset
        }
        lastGradientElements = elements
        lastBucketCount = buckets.count
        lastCommunicationSeconds = communication
    }
}
