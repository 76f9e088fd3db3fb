import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 server on 127.0.0.1 for download tests. It serves GET requests for fixed paths,
/// one connection at a time, and closes each connection after its response.
final class LoopbackHTTPServer: @unchecked Sendable {
    enum Response: Sendable {
        /// 200 with the whole body.
        case body([UInt8])
        /// 200 announcing the whole body in Content-Length, then only the first `sentCount` bytes before
        /// the connection is closed, like a connection cut half way.
        case cut([UInt8], sentCount: Int)
        /// A status line with an empty body, such as 404.
        case status(Int, String)
    }

    let port: Int
    private let listener: Int32
    private let routes: [String: Response]
    private let lock = NSLock()
    private var paths: [String] = []
    private let finished = DispatchSemaphore(value: 0)

    /// Starts listening on an unused loopback port.
    init(routes: [String: Response]) throws {
        self.routes = routes
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Self.failure("socket") }

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 8) == 0 else {
            close(descriptor)
            throw Self.failure("bind or listen")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        listener = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))

        let thread = Thread { [self] in
            serve()
            finished.signal()
        }
        thread.start()
    }

    /// Returns the URL of `path` on this server.
    func url(_ path: String) -> String {
        "http://127.0.0.1:\(port)\(path)"
    }

    /// Paths requested so far, in order.
    var requestedPaths: [String] {
        lock.lock()
        defer { lock.unlock() }
        return paths
    }

    /// Stops accepting connections and waits for the server thread to exit.
    func stop() {
        // shutdown wakes the thread blocked in accept, which then returns an error and exits.
        shutdown(listener, Int32(SHUT_RDWR))
        finished.wait()
        close(listener)
    }

    private func serve() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            handle(connection)
            close(connection)
        }
    }

    private func handle(_ connection: Int32) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.ends(with: Array("\r\n\r\n".utf8)) && request.count < 65_536 {
            let count = recv(connection, &buffer, buffer.count, 0)
            if count <= 0 { return }
            request += buffer[0..<count]
        }
        let requestLine = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self)
        let parts = requestLine.split(separator: " ")
        let path = parts.count >= 2 ? String(parts[1]) : ""
        lock.lock()
        paths.append(path)
        lock.unlock()

        switch routes[path] ?? .status(404, "Not Found") {
        case .body(let body):
            send(connection, header(status: 200, reason: "OK", length: body.count) + body)
        case .cut(let body, let sentCount):
            send(connection, header(status: 200, reason: "OK", length: body.count) + body.prefix(sentCount))
        case .status(let code, let reason):
            send(connection, header(status: code, reason: reason, length: 0))
        }
    }

    private func header(status: Int, reason: String, length: Int) -> [UInt8] {
        let text = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/octet-stream\r\n"
            + "Content-Length: \(length)\r\nConnection: close\r\n\r\n"
        return Array(text.utf8)
    }

    /// Sends everything, ignoring a client that went away (MSG_NOSIGNAL avoids SIGPIPE).
    private func send(_ connection: Int32, _ bytes: [UInt8]) {
        var offset = 0
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let sent = Glibc.send(connection, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 {
                    if sent < 0 && errno == EINTR { continue }
                    return
                }
                offset += sent
            }
        }
    }

    private static func failure(_ call: String) -> Error {
        CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "\(call) failed: \(String(cString: strerror(errno)))"])
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
