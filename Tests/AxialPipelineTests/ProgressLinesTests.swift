import Foundation
import Testing
@testable import AxialPipeline

/// On a pipe / CI: one line per 10% of the work (not one per item, not one per epoch), the last
/// line at finish; a heartbeat line when 10% takes longer than `heartbeat`; `interrupt` keeps log
/// lines out of the bar.
@Suite struct ProgressLinesTests {
    final class Sink: @unchecked Sendable {
        var text = ""
        let lock = NSLock()
        func add(_ s: String) { lock.lock(); text += s; lock.unlock() }
        var lines: [String] { text.split(separator: "\n").map(String.init) }
    }
    final class Clock: @unchecked Sendable { var t = 0.0 }

    @Test func aLineEveryTenPercent() {
        let sink = Sink(), clock = Clock()
        let p = Progress(label: "crossval abmil", total: 200, unit: "epochs", style: .lines, write: { sink.add($0) }, clock: { clock.t })
        for _ in 0..<200 { clock.t += 2; p.advance() }
        p.finish()
        let lines = sink.lines
        #expect(lines.count == 11, "\(lines)")  // 10%, 20%, …, 100%, and the final line
        #expect(lines.first == "crossval abmil 20/200 epochs  0.50 epochs/s  ETA 6:00")
        #expect(lines.last == "crossval abmil 200/200 epochs  0.50 epochs/s  in 6:40")
    }

    @Test func earlyStopsShrinkTheTotalAndSlowWorkGetsAHeartbeat() {
        let sink = Sink(), clock = Clock()
        let p = Progress(label: "x", total: 100, unit: "epochs", style: .lines, heartbeat: 60, write: { sink.add($0) }, clock: { clock.t })
        clock.t = 61; p.advance()                 // 1%, but a minute without a line
        #expect(sink.lines == ["x 1/100 epochs  0.02 epochs/s  ETA 1:40:39"])
        p.addTotal(-80)                           // early stop: 20 epochs in all
        clock.t = 62; p.advance(by: 1)            // 10% of 20
        #expect(sink.lines.count == 2 && sink.lines[1].hasPrefix("x 2/20 epochs"))
    }

    @Test func interruptClearsAndRedrawsTheBar() {
        let sink = Sink(), clock = Clock()
        let p = Progress(label: "x", total: 4, unit: "epochs", style: .bar, write: { sink.add($0) }, clock: { clock.t })
        clock.t = 1; p.advance()
        let before = sink.text
        p.interrupt { sink.add("fold-0 done\n") }
        #expect(sink.text.hasPrefix(before + "\r\u{1B}[2Kfold-0 done\n\r\u{1B}[2Kx [#####"))
    }
}
