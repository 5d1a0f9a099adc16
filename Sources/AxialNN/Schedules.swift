import AxialTensor
import Foundation

/// Linear warmup then cosine decay, per step (transformers' `get_cosine_schedule_with_warmup`
/// with a floor): factor(s) = s / max(1, warmup) for s < warmup, else
///   minFactor + (1 − minFactor)·max(0, ½(1 + cos(π·(s − warmup)/max(1, total − warmup)))).
/// `apply(step:to:)` sets every group's lr to its base lr (captured at init) × factor.
public struct WarmupCosineSchedule: Sendable, Codable {
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minFactor: Double
    public var baseLRs: [Double]

    public init(warmupSteps: Int, totalSteps: Int, minFactor: Double = 0, baseLRs: [Double]) {
        precondition(warmupSteps >= 0 && totalSteps >= warmupSteps, "WarmupCosineSchedule: need 0 ≤ warmup \(warmupSteps) ≤ total \(totalSteps)")
        self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.minFactor = minFactor; self.baseLRs = baseLRs
    }

    /// Base lrs taken from the optimizer's groups now.
    public init(warmupSteps: Int, totalSteps: Int, minFactor: Double = 0, optimizer: any Optimizer) {
        self.init(warmupSteps: warmupSteps, totalSteps: totalSteps, minFactor: minFactor, baseLRs: optimizer.learningRates)
    }

    public func factor(step s: Int) -> Double {
        if s < warmupSteps { return Double(s) / Double(Swift.max(1, warmupSteps)) }
        let progress = Double(s - warmupSteps) / Double(Swift.max(1, totalSteps - warmupSteps))
        return minFactor + (1 - minFactor) * Swift.max(0, 0.5 * (1 + Foundation.cos(Double.pi * progress)))
    }

    /// The learning rates at `step`, one per group.
    public func learningRates(step: Int) -> [Double] { baseLRs.map { $0 * factor(step: step) } }

    /// Writes the step's learning rates into the optimizer's groups.
    public func apply(step: Int, to optimizer: any Optimizer) {
        precondition(optimizer.groups.count == baseLRs.count, "WarmupCosineSchedule: \(baseLRs.count) base lrs for \(optimizer.groups.count) groups")
        for (i, lr) in learningRates(step: step).enumerated() { optimizer.groups[i].lr = lr }
    }
}

/// torch.optim.lr_scheduler.ReduceLROnPlateau: after more than `patience` epochs without
/// improvement, lr ← max(lr·factor, minLR) (skipped when the change ≤ eps = 1e-8), then `cooldown`
/// epochs during which bad epochs are not counted. Improvement (`thresholdMode` rel): min mode
/// a < best·(1 − threshold), max mode a > best·(1 + threshold); abs: a < best − threshold / a > best + threshold.
public struct ReduceLROnPlateau: Sendable, Codable {
    public enum Mode: String, Sendable, Codable { case min, max }
    public enum ThresholdMode: String, Sendable, Codable { case rel, abs }
    public var mode: Mode, factor: Double, patience: Int, threshold: Double, thresholdMode: ThresholdMode
    public var cooldown: Int, minLRs: [Double], eps: Double
    public private(set) var best: Double
    public private(set) var numBadEpochs = 0
    public private(set) var cooldownCounter = 0
    public private(set) var lastEpoch = 0

    public init(mode: Mode = .min, factor: Double = 0.1, patience: Int = 10, threshold: Double = 1e-4,
                thresholdMode: ThresholdMode = .rel, cooldown: Int = 0, minLR: Double = 0, groups: Int = 1, eps: Double = 1e-8) {
        precondition(factor < 1, "ReduceLROnPlateau: factor \(factor) must be < 1")
        self.mode = mode; self.factor = factor; self.patience = patience; self.threshold = threshold
        self.thresholdMode = thresholdMode; self.cooldown = cooldown; self.minLRs = Array(repeating: minLR, count: groups); self.eps = eps
        best = mode == .min ? .infinity : -.infinity
    }

    func isBetter(_ a: Double) -> Bool {
        switch (mode, thresholdMode) {
        case (.min, .rel): return a < best * (1 - threshold)
        case (.min, .abs): return a < best - threshold
        case (.max, .rel): return a > best * (threshold + 1)
        case (.max, .abs): return a > best + threshold
        }
    }

    /// Feeds one epoch's metric; updates the optimizer's lrs when it reduces. Returns whether it reduced.
    @discardableResult
    public mutating func step(metric: Double, optimizer: any Optimizer) -> Bool {
        lastEpoch += 1
        if isBetter(metric) { best = metric; numBadEpochs = 0 } else { numBadEpochs += 1 }
        if cooldownCounter > 0 { cooldownCounter -= 1; numBadEpochs = 0 }
        guard numBadEpochs > patience else { return false }
        for i in optimizer.groups.indices {
            let old = optimizer.groups[i].lr
            let new = Swift.max(old * factor, minLRs[Swift.min(i, minLRs.count - 1)])
            if old - new > eps { optimizer.groups[i].lr = new }
        }
        cooldownCounter = cooldown
        numBadEpochs = 0
        return true
    }
}
