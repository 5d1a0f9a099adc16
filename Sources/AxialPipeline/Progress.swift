import Foundation

/// Progress reporting for long stages (ingest, extract, pretrain, crossval, …): a redrawn bar with
/// count, rate and ETA on a terminal; plain lines when the output is a file or pipe (CI) — one each
/// time the work passes another 10% (at most one every `lineInterval` seconds; one at least every
/// `heartbeat` seconds while work goes on; by time alone when the total is unknown), plus the last;
/// nothing when `quiet`. Thread-safe: workers call `advance`.
///
///     ingest [##########..........]  150/300 slices  212.4 slices/s  ETA 0:01
public final class Progress: @unchecked Sendable {
    public enum Style: Sendable { case bar, lines, quiet }

    public let label: String
    public let unit: String
    public let style: Style
    private let write: @Sendable (String) -> Void
    private let lock = NSLock()
    private var total: Int
    private var done = 0
    private let start: Double
    private var lastDraw = -1.0
    private let lineInterval: Double
    private let heartbeat: Double
    private var lastDecile = 0
    private var finished = false
    private let clock: @Sendable () -> Double

    /// - Parameters:
    ///   - style: `nil` picks `.bar` if standard error is a terminal, `.lines` otherwise.
    ///   - write: where text goes (standard error by default).
    ///   - clock: seconds, monotonic (injectable for tests).
    public init(label: String, total: Int, unit: String = "slices", style: Style? = nil, lineInterval: Double = 1,
                heartbeat: Double = 60, write: (@Sendable (String) -> Void)? = nil, clock: (@Sendable () -> Double)? = nil) {
        self.label = label; self.unit = unit; self.total = max(total, 0)
        self.style = style ?? (isatty(STDERR_FILENO) == 1 ? .bar : .lines)
        self.lineInterval = lineInterval
        self.heartbeat = max(heartbeat, lineInterval)
        self.write = write ?? { s in FileHandle.standardError.write(Data(s.utf8)) }
        let clock = clock ?? { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        self.clock = clock
        self.start = clock()
    }

    /// Adds `n` units of finished work.
    public func advance(by n: Int = 1) {
        lock.lock(); defer { lock.unlock() }
        done += n
        if done > total { total = done }
        drawLocked(force: false)
    }

    /// Adjusts the expected total (e.g. once a volume's slice count is known).
    public func addTotal(_ n: Int) {
        lock.lock(); defer { lock.unlock() }
        total = max(total + n, done)
        drawLocked(force: false)
    }

    /// Prints a line of text without garbling the bar.
    public func message(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        switch style {
        case .quiet: return
        case .bar:
            write("\r\u{1B}[2K" + text + "\n")
            drawLocked(force: true)
        case .lines: write(text + "\n")
        }
    }

    /// Runs `body` (which prints a line elsewhere, e.g. on standard output) with the bar cleared
    /// first and redrawn after, so a log line never lands in the middle of the bar.
    public func interrupt(_ body: () -> Void) {
        lock.lock(); defer { lock.unlock() }
        if style == .bar && !finished && lastDraw >= 0 { write("\r\u{1B}[2K") }
        body()
        if style == .bar && !finished && lastDraw >= 0 { drawLocked(force: true) }
    }

    /// Draws the final state and ends the bar's line.
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        guard !finished else { return }
        drawLocked(force: true)
        if style == .bar { write("\n") }
        finished = true
    }

    /// Extra text shown after the counts (e.g. "loss 1.23  lr 1e-4"); set from the work loop.
    public var detail: String {
        get { lock.lock(); defer { lock.unlock() }; return detailText }
        set { lock.lock(); detailText = newValue; lock.unlock() }
    }
    private var detailText = ""

    /// Seconds since creation.
    public var elapsed: Double { clock() - start }

    /// The status text for the current counts (no control characters).
    public func statusLine() -> String {
        lock.lock(); defer { lock.unlock() }
        return statusLocked(now: clock())
    }

    private func statusLocked(now: Double) -> String {
        let seconds = max(now - start, 1e-9)
        let rate = Double(done) / seconds
        var s = "\(label) "
        if style == .bar {
            let width = 20
            let filled = total > 0 ? min(width, done * width / total) : 0
            s += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
        }
        s += "\(done)/\(total) \(unit)  \(Progress.formatRate(rate)) \(unit)/s"
        if done < total {
            s += rate > 0 ? "  ETA \(Progress.formatDuration(Double(total - done) / rate))" : "  ETA --:--"
        } else {
            s += "  in \(Progress.formatDuration(seconds))"
        }
        if !detailText.isEmpty { s += "  " + detailText }
        return s
    }

    private func drawLocked(force: Bool) {
        guard !finished else { return }
        let now = clock()
        switch style {
        case .quiet: return
        case .bar:
            guard force || now - lastDraw >= 0.1 else { return }
            write("\r\u{1B}[2K" + statusLocked(now: now))
        case .lines:
            let gap = now - (lastDraw < 0 ? start : lastDraw)
            let decile = total > 0 ? done * 10 / total : 0
            let due = total > 0 ? (decile > lastDecile && gap >= lineInterval) || gap >= heartbeat : gap >= lineInterval
            guard force || due else { return }
            lastDecile = decile
            write(statusLocked(now: now) + "\n")
        }
        lastDraw = now
    }

    static func formatRate(_ r: Double) -> String {
        r >= 100 ? String(format: "%.0f", r) : r >= 10 ? String(format: "%.1f", r) : String(format: "%.2f", r)
    }

    /// `m:ss` or `h:mm:ss`.
    public static func formatDuration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let t = Int(seconds.rounded())
        let h = t / 3600, m = (t % 3600) / 60, s = t % 60
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
    }
}
