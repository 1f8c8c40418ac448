import Foundation
import HTTPTypes
import Hummingbird

/// `POST /api/secret-scanning/github`: GitHub's secret scanning partner reports of tokens found in public places.
///
/// The signature over the raw body is the credential: no API key. An active token of this service that GitHub
/// reports is revoked at once, audited as `token.revoke` by `secret-scanning:github` with the reported URL.
struct SecretScanningController {
    let service: TokenService
    let keys: SecretScanningKeys
    /// The client address's failure budget, spent by every unsigned or badly signed report, as by a bad API key.
    let failures: any RateLimitStore
    let metrics: ServiceMetrics
    /// The largest request body read, in bytes (`MAX_BODY_BYTES`).
    let maximumBodySize: Int

    /// The actor audit rows name.
    static let reporter = "secret-scanning:github"

    /// Checks the signature, then answers each reported string with GitHub's label.
    @Sendable func report(_ request: Request, context: TesseraRequestContext) async throws -> Labels {
        let body = try await request.body.collect(upTo: maximumBodySize)
        guard let identifier = request.headers[.githubKeyIdentifier], let signature = request.headers[.githubKeySignature],
            keys.isValid(signature: signature, keyIdentifier: identifier, body: body)
        else {
            metrics.recordAuthentication(succeeded: false)
            let decision = try await failures.acquire(ClientAddressResolver.limiterKey(for: context.clientAddress), logger: context.logger)
            guard decision.allowed else { throw APIError.tooManyRequests(decision, policy: failures.policy) }
            context.logger.notice("secret scanning report refused: unsigned or badly signed", metadata: ["client": "\(context.clientAddress)"])
            throw APIError.badSignature
        }
        let reports = try Self.reports(in: body)
        var labels: [Label] = []
        for report in reports {
            let verdict = try await service.reportLeak(report.token, url: report.url, reporter: Self.reporter, logger: context.logger)
            labels.append(Label(token: report.token, type: report.type, label: verdict == .notOurs ? "false_positive" : "true_positive"))
        }
        context.logger.info("secret scanning report handled", metadata: ["tokens": "\(reports.count)"])
        return Labels(labels)
    }

    /// One reported match.
    struct Report {
        var token: String
        var type: String
        var url: String?
    }

    /// The reports in GitHub's body: an array of `{token, type, url, source}`.
    static func reports(in body: ByteBuffer) throws -> [Report] {
        guard case .array(let array)? = try? JSONParser.parse(body) else {
            throw APIError.validation([FieldError(field: "body", message: "must be a JSON array of {token, type, url, source}")])
        }
        var errors: [FieldError] = []
        let reports = array.enumerated().compactMap { index, element -> Report? in
            guard case .object(let object) = element, case .string(let token)? = object["token"], case .string(let type)? = object["type"] else {
                errors.append(FieldError(field: "[\(index)]", message: "must be an object with token and type strings"))
                return nil
            }
            let url: String? = if case .string(let url)? = object["url"] { url } else { nil }
            return Report(token: token, type: type, url: url)
        }
        guard errors.isEmpty else { throw APIError.validation(errors) }
        return reports
    }

    /// GitHub's answer for one reported string.
    struct Label: Encodable {
        var token: String
        var type: String
        var label: String

        enum CodingKeys: String, CodingKey {
            case token = "token_raw"
            case type = "token_type"
            case label
        }
    }

    /// The answer: a JSON array of labels.
    struct Labels: ResponseGenerator {
        var labels: [Label]

        init(_ labels: [Label]) {
            self.labels = labels
        }

        func response(from request: Request, context: some RequestContext) throws -> Response {
            let data = try JSONEncoder.api.encode(labels)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }
}

extension APIError {
    /// `401`: a secret scanning report without a valid signature by a configured key.
    static let badSignature = APIError(
        .unauthorized,
        type: "urn:tessera:problem:bad-signature",
        detail: "Sign the raw body with a key in SECRET_SCANNING_GITHUB_KEYS (Github-Public-Key-Identifier, Github-Public-Key-Signature)."
    )
}

extension HTTPField.Name {
    static let githubKeyIdentifier = Self("Github-Public-Key-Identifier")!
    static let githubKeySignature = Self("Github-Public-Key-Signature")!
}
