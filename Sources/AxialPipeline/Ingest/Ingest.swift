import AxialCore
import AxialImaging
import AxialStore
import Foundation

/// The ingest stage: input tree → windowed 8-bit PNG slices + `manifest.csv`.
///
/// Output layout (`<out>` = `--out`):
///
///     <out>/manifest.csv                       one row per image: patient_id, study_uid, series_uid,
///                                              slice_index, z_mm, window, path (relative to <out>)
///     <out>/ingest_errors.csv                  path, reason — inputs that were skipped
///     <out>/<patient>/<series_uid>/
///         0000_abdomen.png 0000_lung.png …     separate: one gray PNG per slice and window
///         0000_abdomen+lung+bone.png …         stacked: one RGB PNG per slice (R, G, B = windows)
///         slices.csv                           this series' manifest rows
///         series.json                          spacing, shape, windows (`SeriesInfoFile`)
///         .complete                            marker: the settings this series was made with
///
/// `<patient>` and `<series_uid>` are sanitised (`[A-Za-z0-9._-]`, other characters → `_`).
/// `slice_index` counts from 0 along the slice normal (inferior → superior for a standard axial
/// scan; see `Volume`); `z_mm` is `Volume.sliceZ`.
///
/// Atomicity and resuming: a series is rendered into `<out>/<patient>/.<series>.tmp-…`, gets its
/// `slices.csv` and `.complete`, and is renamed into place; then its rows are appended to
/// `manifest.csv`. Both happen under an exclusive lock on `<out>/.ingest.lock` (shards running at
/// once share the folder). A rerun skips series whose `.complete` records the same settings, and
/// rebuilds `manifest.csv` from the complete series' `slices.csv` at its start and end (under the
/// lock, written atomically), so a killed run never leaves the manifest pointing at missing files
/// or missing rows for finished series. Changing windows / channels / size redoes a series.
public enum Ingest {
    public static let manifestHeader = ["patient_id", "study_uid", "series_uid", "slice_index", "z_mm", "window", "path"]
    public static let errorsHeader = ["path", "reason"]

    /// The outcome of a run.
    public struct Summary: Sendable {
        public var seriesFound = 0
        public var seriesIngested = 0
        public var seriesSkipped = 0
        public var seriesFailed = 0
        /// Series skipped by design (modality not CT): listed in the error list for the record,
        /// never counted as failed (no exit code 3 for them).
        public var seriesNotCT = 0
        public var seriesOtherShards = 0
        public var slices = 0
        public var images = 0
        /// Series ingested with a mask (`--masks`).
        public var seriesWithMasks = 0
        public var problems: [InputProblem] = []
        public var warnings: [String] = []
        public var seconds = 0.0
        public var manifest: URL
        public var errors: URL

        /// The exit status the CLI reports beyond 0: 1 when series of this shard failed and none
        /// was ingested or already complete (nothing usable), 3 when some failed or some inputs were
        /// unreadable while the rest was done; nil when nothing failed.
        public var exitCode: Int32? {
            if seriesFailed > 0 && seriesIngested + seriesSkipped == 0 { return 1 }
            // Only non-CT series in this shard: nothing to ingest, as with no series at all.
            if seriesFailed == 0 && problems.isEmpty && seriesNotCT > 0 && seriesIngested + seriesSkipped == 0 { return 2 }
            if seriesFailed > 0 || !problems.isEmpty { return 3 }
            return nil
        }

        /// One line for stderr when `exitCode` is set.
        public var failureLine: String {
            let scan = problems.count - seriesFailed
            return "ingest: \(seriesFailed) of \(seriesFound - seriesOtherShards) series failed"
                + (scan > 0 ? ", \(scan) input file(s) unreadable" : "") + " — see \(errors.path)"
        }

        /// A few human-readable lines.
        public var text: String {
            var lines = [
                "ingest: \(seriesFound) series found, \(seriesIngested) ingested, \(seriesSkipped) already complete, "
                    + "\(seriesFailed) failed" + (seriesNotCT > 0 ? ", \(seriesNotCT) not CT (skipped)" : "") + (seriesOtherShards > 0 ? ", \(seriesOtherShards) left to other shards" : ""),
                "ingest: \(slices) slices → \(images) images in \(Progress.formatDuration(seconds))"
                    + (seconds > 0 && slices > 0 ? String(format: " (%.1f slices/s)", Double(slices) / seconds) : ""),
                "ingest: manifest \(manifest.path)",
            ]
            if seriesWithMasks > 0 { lines.append("ingest: \(seriesWithMasks) series with mask PNGs (<slice>_mask.png, masks.csv)") }
            if !problems.isEmpty { lines.append("ingest: \(problems.count) input problem(s) listed in \(errors.path)") }
            for w in warnings.prefix(10) { lines.append("ingest: warning: \(w)") }
            if warnings.count > 10 { lines.append("ingest: … and \(warnings.count - 10) more warnings") }
            return lines.joined(separator: "\n")
        }
    }

    /// Runs the stage. Throws only for problems with the options or the output folder; unreadable
    /// inputs are skipped and listed in `ingest_errors.csv`.
    @discardableResult
    public static func run(_ options: IngestOptions) throws -> Summary {
        try options.validate()
        let fm = FileManager.default
        guard fm.fileExists(atPath: options.input.path) else {
            throw PipelineError.io(path: options.input.path, reason: "input does not exist")
        }
        do { try fm.createDirectory(at: options.output, withIntermediateDirectories: true) } catch {
            throw PipelineError.io(path: options.output.path, reason: "cannot create output folder: \(error.localizedDescription)")
        }
        let out = options.output
        let started = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        var summary = Summary(manifest: out.appendingPathComponent("manifest.csv"),
                              errors: out.appendingPathComponent(options.shard.errorListName("ingest_errors")))
        let lock = try FolderLock(url: out.appendingPathComponent(".ingest.lock"))

        // Errors: a fresh list per run (per shard when sharded: ingest_errors.shard-i-of-n.csv).
        try CSVTable(header: errorsHeader).write(to: summary.errors)
        let errors = try CSVAppender(url: summary.errors, header: errorsHeader)
        let problemLog = ProblemLog(appender: errors, lock: lock)

        try lock.locked { try rebuildManifest(out) }

        // Scan with every backend; remember which one found each series.
        var series: [SeriesInfo] = []
        var owners: [Int] = []
        var scanProblems: [InputProblem] = []
        for (r, reader) in options.readers.enumerated() {
            do {
                let (found, problems) = try reader.scan(options.input)
                series += found
                owners += Array(repeating: r, count: found.count)
                scanProblems += problems
            } catch {
                scanProblems.append(InputProblem(path: options.input.path, reason: "\(error)"))
            }
        }
        // Scan problems belong to no patient: shard 0 reports them.
        if options.shard.index == 0 {
            try problemLog.record(scanProblems)
            summary.problems += scanProblems
        }
        // --masks: mask files are never CT series; match the rest to series (IngestMasks).
        var maskOf: [Int: String] = [:]
        if let masks = options.masks {
            let root = masks.folder.standardizedFileURL.resolvingSymlinksInPath().path + "/"
            let keep = series.indices.filter { i in
                !series[i].files.allSatisfy { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path.hasPrefix(root) }
            }
            series = keep.map { series[$0] }; owners = keep.map { owners[$0] }
            let (files, listProblems) = try masks.listFiles()
            let (matched, matchProblems) = IngestMasks.match(series: series, files: files)
            maskOf = matched
            if options.shard.index == 0 {
                try problemLog.record(listProblems + matchProblems)
                summary.problems += listProblems + matchProblems
            }
        }
        summary.seriesFound = series.count

        // Patient IDs that sanitise to the same folder name are refused (all of them, every shard alike).
        let clashes = patientStemCollisions(series.map(\.patientID))

        // This shard's series that are not already complete with the same settings.
        var todo: [(SeriesInfo, Int, String?, String)] = []
        for (i, s) in series.enumerated() {
            guard options.shard.contains(patientID: s.patientID) else { summary.seriesOtherShards += 1; continue }
            if let clash = clashes[patientFileStem(s.patientID)] {
                let p = InputProblem(path: s.files.first ?? options.input.path,
                                     reason: "series \(s.seriesUID): " + patientCollisionReason(s.patientID, clash))
                try problemLog.record([p])
                summary.seriesFailed += 1; summary.problems.append(p)
                continue
            }
            let folder = seriesFolder(out, s.patientID, s.seriesUID)
            var maskSHA: String? = nil
            if let m = maskOf[i] {
                do { maskSHA = SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: m))) } catch {
                    let p = InputProblem(path: m, reason: "mask: cannot read: \(error.localizedDescription)")
                    try problemLog.record([p])
                    summary.seriesFailed += 1; summary.problems.append(p)
                    continue
                }
            }
            let fingerprint = options.settingsFingerprint(maskSHA256: maskSHA)
            if isComplete(folder, fingerprint: fingerprint) { summary.seriesSkipped += 1; continue }
            todo.append((s, owners[i], maskOf[i], fingerprint))
        }

        let progress = Progress(label: "ingest", total: todo.reduce(0) { $0 + max($1.0.files.count, 1) },
                                style: options.progress)
        let resultLock = NSLock()
        nonisolated(unsafe) var results: [SeriesResult] = []
        // Series in parallel (2 at a time at most: each already renders its slices in parallel and
        // holds a whole volume in memory).
        let jobs = todo
        let width = min(2, max(1, jobs.count))
        DispatchQueue.concurrentPerform(iterations: width) { worker in
            var k = worker
            while k < jobs.count {
                let (info, reader, mask, fingerprint) = jobs[k]
                let r = ingestSeries(info, reader: options.readers[reader], mask: mask, fingerprint: fingerprint, options: options, lock: lock,
                                     problems: problemLog, progress: progress)
                resultLock.lock(); results.append(r); resultLock.unlock()
                k += width
            }
        }
        progress.finish()

        for r in results {
            switch r {
            case .done(let slices, let images, let warnings, let masked):
                summary.seriesIngested += 1; summary.slices += slices; summary.images += images
                if masked { summary.seriesWithMasks += 1 }
                summary.warnings += warnings
            case .failed(let problem):
                summary.seriesFailed += 1; summary.problems.append(problem)
            case .notCT:
                summary.seriesNotCT += 1
            }
        }
        try lock.locked { try rebuildManifest(out) }
        summary.seconds = Double(DispatchTime.now().uptimeNanoseconds) / 1e9 - started
        return summary
    }

    enum SeriesResult: Sendable {
        case done(slices: Int, images: Int, warnings: [String], masked: Bool)
        case failed(InputProblem)
        /// Skipped by design (not CT): recorded, not a failure.
        case notCT(InputProblem)
    }

    /// `<out>/<patient>/<series_uid>` (sanitised).
    public static func seriesFolder(_ out: URL, _ patientID: String, _ seriesUID: String) -> URL {
        out.appendingPathComponent(patientFileStem(patientID))
            .appendingPathComponent(sanitizedName(seriesUID.isEmpty ? "unknown" : seriesUID))
    }

    static func isComplete(_ folder: URL, fingerprint: String) -> Bool {
        guard let marker = try? String(contentsOf: folder.appendingPathComponent(".complete"), encoding: .utf8) else {
            return false
        }
        return marker == fingerprint
    }

    /// Image file name of slice `k` for a window label.
    static func imageName(_ k: Int, _ label: String) -> String {
        String(format: "%04d_", k) + sanitizedName(label) + ".png"
    }

    private static func ingestSeries(_ info: SeriesInfo, reader: any VolumeReader, mask: String?, fingerprint: String, options: IngestOptions,
                                     lock: FolderLock, problems: ProblemLog, progress: Progress) -> SeriesResult {
        let estimated = max(info.files.count, 1)
        // HU windows mean nothing for MR, PET, … : only CT series (or a missing Modality) are ingested.
        let modality = info.modality.trimmingCharacters(in: .whitespaces).uppercased()
        if !modality.isEmpty, modality != "CT" {
            let p = InputProblem(path: info.files.first ?? options.input.path,
                                 reason: "series \(info.seriesUID): modality \(modality), not CT (no Hounsfield units), skipped")
            try? problems.record([p])
            progress.addTotal(-estimated)
            return .notCT(p)
        }
        let volume: Volume
        do {
            volume = try reader.read(info)
        } catch {
            let p = problem(for: error, info: info)
            try? problems.record([p])
            progress.addTotal(-estimated)
            progress.message("ingest: skipped \(p.path): \(p.reason)")
            return .failed(p)
        }
        progress.addTotal(volume.depth - estimated)
        guard volume.depth > 0, volume.width > 0, volume.height > 0 else {
            let p = InputProblem(path: info.files.first ?? options.input.path,
                                 reason: "series \(info.seriesUID): empty volume")
            try? problems.record([p])
            return .failed(p)
        }
        // The mask is read and checked against the volume's grid before anything is written.
        var labels: (path: String, values: [UInt8])? = nil
        if let path = mask, let m = options.masks {
            do { labels = (path, try m.read(path, for: volume)) } catch {
                let p = InputProblem(path: path, reason: "series \(info.seriesUID): \(error)")
                try? problems.record([p])
                progress.addTotal(-volume.depth)
                progress.message("ingest: failed \(p.path): \(p.reason)")
                return .failed(p)
            }
        }
        do {
            let (slices, images) = try writeSeries(volume, info: info, mask: labels, fingerprint: fingerprint, options: options, lock: lock, progress: progress)
            let warnings = volume.warnings.map { "series \(info.seriesUID) (patient \(info.patientID)): \($0)" }
            return .done(slices: slices, images: images, warnings: warnings, masked: labels != nil)
        } catch {
            let p = InputProblem(path: info.files.first ?? options.input.path,
                                 reason: "series \(info.seriesUID): cannot write output: \(error)")
            try? problems.record([p])
            progress.message("ingest: failed \(p.path): \(p.reason)")
            return .failed(p)
        }
    }

    static func problem(for error: Error, info: SeriesInfo) -> InputProblem {
        if let e = error as? ImagingError {
            switch e {
            case .unreadable(let path, let reason), .unsupported(let path, let reason):
                return InputProblem(path: path, reason: "series \(info.seriesUID): \(reason)")
            case .inconsistentSeries:
                break
            }
        }
        let path = info.files.count == 1 ? info.files[0]
            : (info.files.first.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? "?")
        return InputProblem(path: path, reason: "\(error)")
    }

    /// Renders all slices into a temporary folder, then commits it. Returns (slices, images).
    private static func writeSeries(_ volume: Volume, info: SeriesInfo, mask: (path: String, values: [UInt8])?,
                                    fingerprint: String, options: IngestOptions, lock: FolderLock,
                                    progress: Progress) throws -> (Int, Int) {
        let out = options.output
        let final = seriesFolder(out, info.patientID, info.seriesUID)
        let patientFolder = final.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: patientFolder, withIntermediateDirectories: true)
        let temporary = AtomicFile.temporaryURL(for: final)
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: false)
        do {
            let labels: [String] = options.channels == .separate
                ? options.windows.map(\.name) : [options.windows.map(\.name).joined(separator: "+")]
            let resampler = options.size.map {
                Resampler(inWidth: volume.width, inHeight: volume.height, outWidth: $0, outHeight: $0)
            }
            let depth = volume.depth
            let failures = FailureBox()
            DispatchQueue.concurrentPerform(iterations: depth) { k in
                guard !failures.hasFailed else { return }
                do {
                    let images = try renderSlice(volume, k, windows: options.windows, channels: options.channels, resampler: resampler)
                    for (image, label) in zip(images, labels) {
                        try PNG.writeInPlace(image, to: temporary.appendingPathComponent(imageName(k, label)), fast: options.fastPNG)
                    }
                    if let m = mask {
                        let image = IngestMasks.slice(m.values, width: volume.width, height: volume.height, k, size: options.size)
                        try PNG.writeInPlace(image, to: temporary.appendingPathComponent(IngestMasks.pngName(k)), fast: options.fastPNG)
                    }
                    progress.advance()
                } catch {
                    failures.record(error)
                }
            }
            if let e = failures.first { throw e }

            let relativeFolder = patientFileStem(info.patientID) + "/"
                + sanitizedName(info.seriesUID.isEmpty ? "unknown" : info.seriesUID) + "/"
            var rows: [[String]] = []
            rows.reserveCapacity(depth * labels.count)
            for k in 0..<depth {
                let z = String(format: "%.4f", volume.sliceZ(k))
                for label in labels {
                    rows.append([volume.provenance.patientID, volume.provenance.studyUID, volume.provenance.seriesUID,
                                 String(k), z, label, relativeFolder + imageName(k, label)])
                }
            }
            try CSVTable(header: manifestHeader, rows: rows).write(to: temporary.appendingPathComponent("slices.csv"))
            if let m = mask {
                try IngestMasks.csv(m.values, volume: volume, size: options.size, folder: relativeFolder)
                    .write(to: temporary.appendingPathComponent(IngestMasks.csvName))
            }
            try SeriesInfoFile(volume, windows: options.windows, channels: options.channels, size: options.size)
                .write(to: temporary.appendingPathComponent(SeriesInfoFile.name))
            try AtomicFile.write(Data(fingerprint.utf8), to: temporary.appendingPathComponent(".complete"))

            try lock.locked {
                if FileManager.default.fileExists(atPath: final.path) {
                    // A stale or differently-made copy: move it aside, then drop it.
                    let old = AtomicFile.temporaryURL(for: final)
                    try FileManager.default.moveItem(at: final, to: old)
                    try? FileManager.default.removeItem(at: old)
                }
                guard rename(temporary.path, final.path) == 0 else {
                    throw PipelineError.io(path: final.path, reason: "cannot rename series folder: \(String(cString: strerror(errno)))")
                }
                let manifest = try CSVAppender(url: out.appendingPathComponent("manifest.csv"), header: manifestHeader)
                try manifest.append(rows)
            }
            return (depth, depth * labels.count)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// The 8-bit images of slice `k` (HU, optionally resampled, then windowed): one gray image per
    /// window (`separate`) or one RGB image (`stacked`). What ingest writes as PNGs and what
    /// `axial extract` embeds when given DICOM / NIfTI directly.
    public static func renderSlice(_ volume: Volume, _ k: Int, windows: [CTWindow], channels: ChannelMode,
                                   resampler: Resampler?) throws -> [Image8] {
        if resampler == nil && channels == .separate {
            // Native size, one image per window: window straight from the volume (no HU copy,
            // no zero-filled byte buffer).
            let slice = volume.slice(k), n = slice.count
            return slice.withUnsafeBufferPointer { hu in
                windows.map { window in
                    Image8(width: volume.width, height: volume.height, channels: 1,
                           pixels: [UInt8](unsafeUninitializedCapacity: n) { b, count in window.apply(hu, to: b); count = n })
                }
            }
        }
        var hu = Array(volume.slice(k))
        var (w, h) = (volume.width, volume.height)
        if let r = resampler { hu = r(hu); (w, h) = (r.outWidth, r.outHeight) }
        switch channels {
        case .separate: return windows.map { $0.apply(hu, width: w, height: h) }
        case .stacked: return [try CTWindow.stack(hu, width: w, height: h, windows: windows)]
        }
    }

    /// Rewrites `<out>/manifest.csv` from the `slices.csv` of every complete series (sorted by
    /// patient, series, slice, window); removes temporary folders left by killed runs. Call under the lock.
    public static func rebuildManifest(_ out: URL) throws {
        let fm = FileManager.default
        var rows: [[String]] = []
        let patients = ((try? fm.contentsOfDirectory(atPath: out.path)) ?? []).sorted()
        for p in patients where !p.hasPrefix(".") {
            let patientURL = out.appendingPathComponent(p)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: patientURL.path, isDirectory: &isDir), isDir.boolValue else { continue }
            for s in ((try? fm.contentsOfDirectory(atPath: patientURL.path)) ?? []).sorted() {
                let folder = patientURL.appendingPathComponent(s)
                if s.hasPrefix(".") {
                    if s.contains(".tmp-") && !lockHolderAlive(s) { try? fm.removeItem(at: folder) }
                    continue
                }
                guard fm.fileExists(atPath: folder.appendingPathComponent(".complete").path),
                      let table = try? CSVTable.read(folder.appendingPathComponent("slices.csv")),
                      table.header == manifestHeader else { continue }
                rows += table.rows
            }
        }
        try CSVTable(header: manifestHeader, rows: rows).write(to: out.appendingPathComponent("manifest.csv"))
    }

    /// Temporary names carry the writer's pid (`.tmp-<pid>-<tag>`): keep those of live processes.
    static func lockHolderAlive(_ name: String) -> Bool {
        guard let r = name.range(of: ".tmp-") else { return false }
        let pidText = name[r.upperBound...].prefix(while: { $0.isNumber })
        guard let pid = Int32(pidText) else { return false }
        if pid == getpid() { return true }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}

/// An exclusive `flock` on a file, shared by processes writing into one output folder.
final class FolderLock: @unchecked Sendable {
    private let fd: Int32
    private let mutex = NSLock()
    init(url: URL) throws {
        fd = open(url.path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw PipelineError.io(path: url.path, reason: "cannot create lock file: \(String(cString: strerror(errno)))") }
    }
    deinit { close(fd) }
    func locked<R>(_ body: () throws -> R) throws -> R {
        mutex.lock(); defer { mutex.unlock() }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

/// Appends input problems to `ingest_errors.csv` as they happen.
final class ProblemLog: @unchecked Sendable {
    let appender: CSVAppender
    let lock: FolderLock
    init(appender: CSVAppender, lock: FolderLock) { self.appender = appender; self.lock = lock }
    func record(_ problems: [InputProblem]) throws {
        guard !problems.isEmpty else { return }
        try lock.locked { try appender.append(problems.map { [$0.path, $0.reason] }) }
    }
}

/// First error from parallel workers.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?
    var hasFailed: Bool { lock.lock(); defer { lock.unlock() }; return error != nil }
    var first: Error? { lock.lock(); defer { lock.unlock() }; return error }
    func record(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}
