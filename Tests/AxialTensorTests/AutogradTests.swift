import Foundation
import AxialTestSupport
import Testing
@testable import AxialTensor

@Suite("Autodiff semantics")
struct AutogradTests {
    @Test func simpleProductGradient() {
        let w = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]).requiringGrad()
        (w * w).sum().backward()
        #expect(w.grad?.scalars == [2, 4, 6, 8])
    }

    @Test func gradientsAccumulateAcrossBackwardCalls() {
        let x = Tensor([1, -2, 3]).requiringGrad()
        (x * 2).sum().backward()
        (x * 3).sum().backward()
        #expect(x.grad?.scalars == [5, 5, 5])
        x.zeroGrad()
        #expect(x.grad == nil)
        (x * x).sum().backward()
        #expect(x.grad?.scalars == [2, -4, 6])
    }

    @Test func copiesShareLeafIdentity() {
        let x = Tensor([1, 2]).requiringGrad()
        let copy = x
        (copy * copy).sum().backward()
        #expect(x.grad?.scalars == [2, 4])
    }

    @Test func reusedInputSumsBothPaths() {
        let x = Tensor([2]).requiringGrad()
        let y = x * x + x.exp() * x
        y.sum().backward()
        let e = Foundation.exp(Float(2))
        #expect(Swift.abs(x.grad!.item() - (4 + e * 2 + e)) < 1e-4)
    }

    @Test func detachStopsGradient() {
        let x = Tensor([1, 2, 3]).requiringGrad()
        let y = x * x.detached()
        #expect(!x.detached().requiresGrad)
        y.sum().backward()
        #expect(x.grad?.scalars == [1, 2, 3])
    }

    @Test func noGradRecordsNothing() {
        let x = Tensor([1, 2, 3]).requiringGrad()
        let y = withNoGrad { (x * x).exp().sum() }
        #expect(!y.requiresGrad)
        #expect(Tensor.isGradEnabled)
        withNoGrad { #expect(!Tensor.isGradEnabled) }
    }

    @Test func noGradIsCarriedIntoParallelWorkers() {
        let x = Tensor([1, 2, 3]).requiringGrad()
        let flags = UnsafeMutablePointer<Bool>.allocate(capacity: 64)
        defer { flags.deallocate() }
        flags.initialize(repeating: true, count: 64)
        let fp = SendablePointer(flags)
        withNoGrad {
            parallelFor(64) { r in for i in r { fp.p[i] = (x * x).requiresGrad } }
        }
        #expect((0..<64).allSatisfy { !flags[$0] })
        parallelFor(64) { r in for i in r { fp.p[i] = (x * x).requiresGrad } }
        #expect((0..<64).allSatisfy { flags[$0] })
    }

    @Test func frozenInputGetsNoGradButPassesIt() {
        let frozen = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])      // a frozen weight
        let adapter = Tensor(shape: [1, 2], scalars: [0.5, -1]).requiringGrad()
        let y = linear(adapter, weight: frozen)                          // [1, 2]
        y.sum().backward()
        #expect(frozen.grad == nil && !frozen.requiresGrad)
        // d/dx Σ x·Wᵀ = column sums of W = [1+3, 2+4]
        #expect(adapter.grad?.scalars == [4, 6])
    }

    @Test func backwardWithExplicitGradient() {
        let x = Tensor([1, 2]).requiringGrad()
        (x * 3).backward(gradient: Tensor([1, 10]))
        #expect(x.grad?.scalars == [3, 30])
    }

    @Test func retainGraphAllowsSecondBackward() {
        let x = Tensor([1, 2]).requiringGrad()
        let y = (x * x).sum()
        y.backward(retainGraph: true)
        y.backward()
        #expect(x.grad?.scalars == [4, 8])
    }

    @Test func clipGradNormMatchesTorchFormula() {
        let a = Tensor([3, 0]).requiringGrad(), b = Tensor([4]).requiringGrad()
        a.grad = Tensor([3, 0]); b.grad = Tensor([4])
        let norm = clipGradNorm([a, b], maxNorm: 1)
        #expect(Swift.abs(norm - 5) < 1e-6)
        let c: Float = 1 / (5 + 1e-6)
        #expect(Swift.abs(a.grad!.scalars[0] - 3 * c) < 1e-7 && Swift.abs(b.grad!.item() - 4 * c) < 1e-7)
        // Below the threshold nothing changes.
        let n2 = clipGradNorm([a, b], maxNorm: 10)
        #expect(Swift.abs(n2 - 1) < 1e-5 && Swift.abs(b.grad!.item() - 4 * c) < 1e-7)
    }

    @Test func copyOnWriteLeavesOtherCopiesIntact() {
        let a = Tensor([1, 2, 3])
        var b = a
        b.withUnsafeMutableBufferPointer { $0[0] = 9 }
        #expect(a.scalars == [1, 2, 3] && b.scalars == [9, 2, 3])
    }

    @Test func description() {
        #expect(Tensor(shape: [2], scalars: [1, 2]).description == "Tensor[2] [1, 2]")
    }
}
