import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads untrusted HDF5 feature files in a child process (`axial-h5probe`) before Axial opens them
/// itself, so that a file which crashes the HDF5 library cannot crash the run: Debian 12's libhdf5
/// 1.10.8 has a heap-use-after-free on a damaged attribute message (`H5O__msg_iterate_real` under
/// `H5Aexists`, found by FuzzFeatureStore), and checking HDF5 object headers in Swift would mean
/// re-implementing the format.
///
/// One child reads the whole batch (one path per line on its stdin, one answer line each); when it
/// dies on a file, that file is reported as "damaged HDF5 file (the HDF5 library crashed reading
/// it)" and a new child takes the rest. A file on which the library does not finish (libhdf5 1.10.8
/// loops in its metadata cache on a damaged global heap — also a FuzzFeatureStore find) is given
/// `AXIAL_H5PROBE_TIMEOUT` seconds (default 120; a complete feature file reads in well under one),
/// then the child is killed and the file reported as damaged the same way. The probe is found through `AXIAL_H5PROBE` (a path), else
/// beside the running executable (`axial`, or the test bundle in `.build/<config>/`). Without it
/// `check` throws `FeatureProbe.Missing` naming the folders searched, unless `AXIAL_H5PROBE_OFF=1`
/// opts out (the files are then read in-process only, as before: a damaged file can crash the run).
public enum FeatureProbe {
    public static let executableName = "axial-h5probe"
    public static let pathVariable = "AXIAL_H5PROBE"
    public static let optOutVariable = "AXIAL_H5PROBE_OFF"
    public static let timeoutVariable = "AXIAL_H5PROBE_TIMEOUT"
    public static let defaultTimeout = 120.0
    public static let crashReason = "damaged HDF5 file (the HDF5 library crashed reading it)"
    public static func hangReason(_ seconds: Double) -> String {
        "damaged HDF5 file (the HDF5 library did not finish reading it within \(seconds == seconds.rounded() && seconds < 1e9 ? String(Int(seconds)) : String(seconds)) s; \(timeoutVariable) sets the limit)"
    }

    /// Seconds one file may take in the probe: `AXIAL_H5PROBE_TIMEOUT` (a positive number) or 120.
    public static func timeout(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Double {
        guard let v = environment[timeoutVariable], !v.isEmpty else { return defaultTimeout }
        guard let t = Double(v), t.isFinite, t > 0 else {
            throw ProbeSettingError(description: "\(timeoutVariable)=\(v): must be a positive number of seconds")
        }
        return t
    }

    public struct ProbeSettingError: Error, CustomStringConvertible, Sendable { public var description: String }

    /// The probe could not be found (and `AXIAL_H5PROBE_OFF=1` is not set).
    public struct Missing: Error, CustomStringConvertible, Sendable {
        public var searched: [String]
        public var description: String {
            "cannot find \(FeatureProbe.executableName) (searched: \(searched.joined(separator: ", "))): Axial reads HDF5 feature files "
                + "in that child process first, so that a damaged file cannot crash the run — install it beside axial "
                + "(swift build builds it), point \(FeatureProbe.pathVariable) at it, or set \(FeatureProbe.optOutVariable)=1 "
                + "to read the files in-process only"
        }
    }

    /// The probe to run, nil when opted out.
    public static func executable() throws -> URL? {
        let env = ProcessInfo.processInfo.environment
        if env[optOutVariable] == "1" { return nil }
        let fm = FileManager.default
        if let p = env[pathVariable], !p.isEmpty {
            guard fm.isExecutableFile(atPath: p) else { throw Missing(searched: ["\(pathVariable)=\(p) (not an executable file)"]) }
            return URL(fileURLWithPath: p)
        }
        var folders: [URL] = []
        if let exe = Bundle.main.executableURL { folders.append(exe.resolvingSymlinksInPath().deletingLastPathComponent()) }
        // An .xctest bundle (macOS) sits in the build folder beside the executables.
        folders.append(Bundle.main.bundleURL.deletingLastPathComponent())
        if let arg0 = CommandLine.arguments.first, arg0.contains("/") {
            folders.append(URL(fileURLWithPath: arg0).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        var searched: [String] = []
        for folder in folders {
            let candidate = folder.appendingPathComponent(executableName)
            if searched.contains(folder.path) { continue }
            searched.append(folder.path)
            if fm.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw Missing(searched: searched)
    }

    /// Probes every file; returns the failures only: path → reason (the reader's error, or
    /// `crashReason`). An empty result means every file read cleanly in the child. Opted out: [:].
    /// `probe` replaces the executable found by `executable()` (tests).
    public static func check(_ urls: [URL], probe: URL? = nil, timeout limit: Double? = nil) throws -> [String: String] {
        guard !urls.isEmpty, let exe = try probe ?? executable() else { return [:] }
        let seconds = try limit ?? timeout()
        signal(SIGPIPE, SIG_IGN)   // a child that died makes our write fail with EPIPE, not kill us
        var failures: [String: String] = [:]
        var child: Child? = nil
        defer { child?.finish() }
        for url in urls {
            let path = url.path
            if path.contains("\n") || path.contains("\r") {
                failures[path] = "file name holds a line break: refused"
                continue
            }
            if child == nil { child = try Child(exe) }
            switch child!.ask(path, timeout: seconds) {
            case .line(let answer):
                if answer == "ok \(path)" { continue }
                let prefix = "error \(path)\t"
                failures[path] = answer.hasPrefix(prefix) ? String(answer.dropFirst(prefix.count)) : "unexpected answer from \(executableName): \(answer)"
            case .died:
                failures[path] = crashReason   // the child died on this file: the next file gets a new one
                child!.finish()
                child = nil
            case .timedOut:
                failures[path] = hangReason(seconds)
                child!.kill()
                child = nil
            }
        }
        return failures
    }

    /// The probe's own side (`axial-h5probe`'s main): paths as arguments, or (none given) one per
    /// line on stdin; for each file its layout, provenance, completeness and a full read through
    /// the readers' code (`readAnyLayout`), then one line on stdout, flushed: `ok <path>` or
    /// `error <path>\t<message>`.
    public static func serve(arguments: [String]) {
        // One write(2) per answer: nothing sits in a buffer when the HDF5 library kills the process.
        func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        func probe(_ path: String) {
            let url = URL(fileURLWithPath: path)
            do {
                _ = try FeatureStore.layout(of: url)
                _ = FeatureStore.readProvenance(url)
                _ = FeatureStore.isComplete(url)
                _ = try FeatureStore.readAnyLayout(url)
                say("ok \(path)")
            } catch {
                let message = "\(error)".replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " ")
                say("error \(path)\t\(message)")
            }
        }
        if !arguments.isEmpty {
            for path in arguments { probe(path) }
        } else {
            while let line = Swift.readLine(strippingNewline: true) {
                if !line.isEmpty { probe(line) }
            }
        }
    }

    /// One running probe: paths in on stdin, answers out on stdout.
    final class Child {
        let process = Process()
        let input: FileHandle
        let output: FileHandle
        var buffer: [UInt8] = []

        init(_ exe: URL) throws {
            let inPipe = Pipe(), outPipe = Pipe()
            process.executableURL = exe
            process.arguments = []
            process.standardInput = inPipe
            process.standardOutput = outPipe
            process.standardError = FileHandle.nullDevice
            do { try process.run() } catch {
                throw Missing(searched: ["\(exe.path) (cannot start it: \(error.localizedDescription))"])
            }
            input = inPipe.fileHandleForWriting
            output = outPipe.fileHandleForReading
            // Our copies of the child's ends, so that its death is an EOF here.
            try? inPipe.fileHandleForReading.close()
            try? outPipe.fileHandleForWriting.close()
        }

        enum Answer { case line(String), died, timedOut }

        /// Sends one path and waits at most `timeout` seconds for its answer line.
        func ask(_ path: String, timeout: Double) -> Answer {
            do { try input.write(contentsOf: Data((path + "\n").utf8)) } catch { return .died }
            return readLine(deadline: DispatchTime.now().uptimeNanoseconds &+ UInt64(min(timeout, 1e9) * 1e9))
        }

        func readLine(deadline: UInt64) -> Answer {
            while true {
                if let nl = buffer.firstIndex(of: 0x0A) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self)
                    buffer.removeSubrange(...nl)
                    return .line(line)
                }
                let now = DispatchTime.now().uptimeNanoseconds
                if now >= deadline { return .timedOut }
                var pfd = pollfd(fd: output.fileDescriptor, events: Int16(POLLIN), revents: 0)
                let waitMs = Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
                let ready = poll(&pfd, 1, waitMs)
                if ready < 0 && errno == EINTR { continue }
                if ready < 0 { return .died }
                if ready == 0 { continue }
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = chunk.withUnsafeMutableBytes { read(output.fileDescriptor, $0.baseAddress, 4096) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return .died }
                buffer += chunk[0..<n]
            }
        }

        /// Kills a child that hangs (SIGKILL: the HDF5 library is looping, nothing to flush).
        func kill() {
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
            finish()
        }

        func finish() {
            try? input.close()
            process.waitUntilExit()
            try? output.close()
        }
    }
}
