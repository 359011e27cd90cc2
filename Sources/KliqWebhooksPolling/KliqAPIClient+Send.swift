import AsyncHTTPClient
import Foundation
import KliqWebhooks
import Logging
import NIOCore
import NIOHTTP1

extension KliqAPIClient {
    /// One API request, paced, retried and mapped to ``KliqAPIError``: the answer's body on `2xx`.
    func send(_ method: HTTPMethod, _ path: String, body: [UInt8]?, what: String) async throws(KliqAPIError) -> [UInt8] {
        let url = "\(self.configuration.baseURL)/tenants/\(Self.escape(self.configuration.tenantId))\(path)"
        var lastError = KliqAPIError(.unreachable, "could not \(what)")
        for attempt in 1...self.configuration.maxAttempts {
            var request = HTTPClientRequest(url: url)
            request.method = method
            request.headers.add(name: "Authorization", value: "Bearer \(self.configuration.apiKey.value)")
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: "kliq-webhooks")
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            var pause: Duration?
            do {
                let (response, answer) = try await self.pacer.paced {
                    let response = try await self.http.execute(request, timeout: .nanoseconds(self.configuration.timeout.nanoseconds))
                    return (response, Array(buffer: try await response.body.collect(upTo: 64 << 20)))
                }
                let status = Int(response.status.code)
                if (200..<300).contains(status) { return answer }
                lastError = self.error(status: status, body: answer, what: what)
                switch status {
                case 429, 503:
                    pause = Self.retryAfter(response.headers.first(name: "Retry-After"))
                    if let pause { self.pacer.pause(for: pause) }
                case 500...599: break
                default: throw lastError
                }
            } catch let error as KliqAPIError {
                throw error
            } catch let error as HTTPClientError where [.deadlineExceeded, .readTimeout, .connectTimeout].contains(error) {
                lastError = KliqAPIError(.timeout, "could not \(what): no answer within \(self.configuration.timeout)")
            } catch is CancellationError {
                throw KliqAPIError(.unreachable, "could not \(what): cancelled")
            } catch {
                lastError = KliqAPIError(.unreachable, "could not \(what): \(self.redact("\(error)"))")
            }
            guard attempt < self.configuration.maxAttempts else { break }
            self.logger.debug("retrying a KLIQ API request", metadata: [
                "kliq.api_request": .string(what), "kliq.attempt": "\(attempt)", "kliq.error": .string(lastError.description),
            ])
            // A pause the API asked for is waited out by the pacer; otherwise back off, with jitter.
            if pause == nil {
                let base = self.configuration.backoff * (1 << (attempt - 1))
                do { try await Task.sleep(for: base + base * Double.random(in: 0..<0.25)) } catch { break }
            }
        }
        throw lastError
    }

    /// The error for a non-`2xx` answer: the status, and the API's own `message`/`error` text (the key
    /// removed, should the API ever echo it).
    func error(status: Int, body: [UInt8], what: String) -> KliqAPIError {
        let json = try? JSONValue(parsing: body)
        let said = json?["message"]?.stringValue ?? json?["error"]?.stringValue ?? json?["error"]?["message"]?.stringValue
        let detail = said.map { ": " + self.redact(String($0.prefix(200))) } ?? ""
        let code: KliqAPIError.Code
        switch status {
        case 401: code = .unauthorized
        case 403: code = .forbidden
        case 404: code = .notFound
        case 429: code = .rateLimited
        case 503: code = .rateLimited
        case 500...599: code = .serverError
        default: code = .rejected
        }
        return KliqAPIError(code, "could not \(what): the API answered \(status)\(detail)", status: status)
    }

    /// `text` without the API key.
    func redact(_ text: String) -> String {
        let key = self.configuration.apiKey.value
        return key.isEmpty ? text : text.replacingOccurrences(of: key, with: "***")
    }

    /// A `Retry-After` value: seconds, or an HTTP date; `nil` when absent or unreadable. At most an hour.
    static func retryAfter(_ value: String?) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value), seconds >= 0 { return .milliseconds(Int64(min(seconds, 3600) * 1000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .milliseconds(Int64(max(0, min(date.timeIntervalSinceNow, 3600)) * 1000))
    }
}
