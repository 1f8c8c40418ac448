/// Fixed-width base62 (`0-9A-Za-z`) encoding of unsigned big-endian integers.
enum Base62 {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// Encodes the big-endian integer in `bytes` as exactly `width` digits, most significant first.
    ///
    /// `width` must be large enough for the value (43 digits hold 256 bits, 6 hold 32).
    static func encode(_ bytes: [UInt8], width: Int) -> String {
        // The value as big-endian 32-bit limbs, divided by 62^5 per pass: five digits for each pass over the limbs.
        var limbs = [UInt32](repeating: 0, count: (bytes.count + 3) / 4)
        for (index, byte) in bytes.reversed().enumerated() {
            limbs[limbs.count - 1 - index / 4] |= UInt32(byte) << (8 * (index % 4))
        }
        let fiveDigits: UInt64 = 62 * 62 * 62 * 62 * 62
        var digits = [UInt8](repeating: alphabet[0], count: width)
        var position = width
        while limbs.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for index in limbs.indices {
                let accumulator = remainder << 32 | UInt64(limbs[index])
                limbs[index] = UInt32(accumulator / fiveDigits)
                remainder = accumulator % fiveDigits
            }
            for _ in 0..<5 where position > 0 {
                position -= 1
                digits[position] = alphabet[Int(remainder % 62)]
                remainder /= 62
            }
            precondition(remainder == 0, "value does not fit in \(width) base62 digits")
        }
        return String(decoding: digits, as: UTF8.self)
    }

    /// Encodes a 32-bit value as exactly `width` digits.
    static func encode(_ value: UInt32, width: Int) -> String {
        encode(withUnsafeBytes(of: value.bigEndian, Array.init), width: width)
    }

    /// The value of `digits` (most significant first), or `nil` if one is not a base62 digit or there are more than 10.
    static func decode(_ digits: some Collection<UInt8>) -> UInt64? {
        guard digits.count <= 10 else { return nil }
        var value: UInt64 = 0
        for character in digits {
            guard let digit = digitValue(character) else { return nil }
            value = value * 62 + digit
        }
        return value
    }

    private static func digitValue(_ character: UInt8) -> UInt64? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt64(character - UInt8(ascii: "0"))
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt64(character - UInt8(ascii: "A")) + 10
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt64(character - UInt8(ascii: "a")) + 36
        default: nil
        }
    }

    /// Whether `character` is one of the 62 digits.
    static func isDigit(_ character: UInt8) -> Bool {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"): true
        default: false
        }
    }
}

/// CRC-32 (IEEE 802.3, the zlib polynomial): an error-detecting checksum, not a cryptographic hash.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 {
            value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1
        }
        return value
    }

    /// Returns the CRC-32 of `bytes`.
    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }
}
