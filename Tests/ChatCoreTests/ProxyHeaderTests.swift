import Testing

@testable import ChatCore

@Suite struct ProxyHeaderTests {
    private func v2(
        command: UInt8 = 0x1, family: UInt8 = 0x11, addresses: [UInt8], tlvs: [UInt8] = []
    ) -> [UInt8] {
        let block = addresses + tlvs
        return ProxyHeader.v2Signature + [0x20 | command, family, UInt8(block.count >> 8), UInt8(block.count & 0xFF)]
            + block
    }

    private let ipv4Block: [UInt8] = [203, 0, 113, 7, 192, 0, 2, 1, 0xDC, 0x04, 0x01, 0xBB]  // :56324 -> :443
    private var ipv6Block: [UInt8] {
        [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [0x05]  // 2001:db8::5
            + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [0x01] + [0x30, 0x39, 0x01, 0xBB]
    }

    @Test func version1TCP4AndTCP6AndUnknown() {
        let tcp4 = Array("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n".utf8)
        #expect(
            ProxyHeader.parse(tcp4)
                == .complete(.proxied(source: IPAddress("203.0.113.7")!, sourcePort: 56324), length: tcp4.count))
        let tcp6 = Array("PROXY TCP6 2001:db8::5 2001:db8::1 12345 443\r\n".utf8)
        #expect(
            ProxyHeader.parse(tcp6)
                == .complete(.proxied(source: IPAddress("2001:db8::5")!, sourcePort: 12345), length: tcp6.count))
        #expect(ProxyHeader.parse(Array("PROXY UNKNOWN\r\n".utf8)) == .complete(.unknown, length: 15))
        let unknownWithAddresses = Array("PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 65535 65535\r\n".utf8)
        #expect(ProxyHeader.parse(unknownWithAddresses) == .complete(.unknown, length: unknownWithAddresses.count))
    }

    @Test func version1Refusals() {
        for text in [
            "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\n",  // no CR
            "PROXY TCP4 2001:db8::5 192.0.2.1 56324 443\r\n",  // family mismatch
            "PROXY TCP6 203.0.113.7 192.0.2.1 56324 443\r\n",
            "PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",  // port out of range
            "PROXY TCP4 203.0.113.7 192.0.2.1 056 443\r\n",  // leading zero
            "PROXY TCP4 203.0.113.7  192.0.2.1 56324 443\r\n",  // two spaces
            "PROXY TCP4 203.0.113.7 192.0.2.1 56324\r\n",  // a field missing
            "PROXY UDP4 203.0.113.7 192.0.2.1 56324 443\r\n",
            "PROXY TCP4 203.0.113.07 192.0.2.1 56324 443\r\n",
        ] {
            guard case .invalid = ProxyHeader.parse(Array(text.utf8)) else {
                Issue.record("accepted \(text.debugDescription)")
                continue
            }
        }
        // Over 107 bytes without a line end: refused, however it continues.
        let long = Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 100)
        #expect(ProxyHeader.parse(long) == .invalid("version 1 header over 107 bytes"))
        let justFits = Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 91) + [13, 10]
        #expect(justFits.count == 107)
        #expect(ProxyHeader.parse(justFits) == .complete(.unknown, length: 107))
    }

    @Test func version2ProxyAndLocalOverIPv4AndIPv6() {
        let v4 = v2(addresses: ipv4Block)
        #expect(
            ProxyHeader.parse(v4)
                == .complete(.proxied(source: IPAddress("203.0.113.7")!, sourcePort: 56324), length: 28))
        let v6 = v2(family: 0x21, addresses: ipv6Block)
        #expect(
            ProxyHeader.parse(v6)
                == .complete(.proxied(source: IPAddress("2001:db8::5")!, sourcePort: 12345), length: 52))
        #expect(ProxyHeader.parse(v2(command: 0x0, family: 0x00, addresses: [])) == .complete(.local, length: 16))
        #expect(
            ProxyHeader.parse(v2(command: 0x0, family: 0x11, addresses: ipv4Block)) == .complete(.local, length: 28))
        // Unspecified, UNIX and datagram families name no TCP client: the peer stands in.
        #expect(ProxyHeader.parse(v2(family: 0x00, addresses: [])) == .complete(.unknown, length: 16))
        #expect(ProxyHeader.parse(v2(family: 0x12, addresses: ipv4Block)) == .complete(.unknown, length: 28))
    }

    @Test func version2TLVsAreSkipped() {
        // PP2_TYPE_ALPN "h2" and PP2_TYPE_NOOP with 3 bytes.
        let tlvs: [UInt8] = [0x01, 0x00, 0x02, 0x68, 0x32, 0x04, 0x00, 0x03, 0, 0, 0]
        let header = v2(addresses: ipv4Block, tlvs: tlvs)
        #expect(
            ProxyHeader.parse(header + Array("alice@example.com\r\n".utf8))
                == .complete(.proxied(source: IPAddress("203.0.113.7")!, sourcePort: 56324), length: header.count))
    }

    @Test func version2Refusals() {
        var wrongVersion = v2(addresses: ipv4Block)
        wrongVersion[12] = 0x11
        #expect(ProxyHeader.parse(wrongVersion) == .invalid("version 2 header of another version"))
        var wrongCommand = v2(addresses: ipv4Block)
        wrongCommand[12] = 0x22
        #expect(ProxyHeader.parse(wrongCommand) == .invalid("version 2 command is neither LOCAL nor PROXY"))
        #expect(
            ProxyHeader.parse(v2(addresses: Array(ipv4Block.prefix(8))))
                == .invalid("version 2 address block is too short"))
        #expect(
            ProxyHeader.parse(v2(family: 0x51, addresses: ipv4Block)) == .invalid("version 2 family is not defined"))
        let oversize = ProxyHeader.v2Signature + [0x21, 0x11, 0x08, 0x01]  // 2 049 bytes of addresses
        #expect(ProxyHeader.parse(oversize) == .invalid("version 2 header over 2064 bytes"))
    }

    @Test func aHeaderSplitOverManyReadsIsIncompleteUntilWhole() {
        let headers = [
            Array("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n".utf8),
            v2(addresses: ipv4Block, tlvs: [0x04, 0x00, 0x01, 0]),
            v2(family: 0x21, addresses: ipv6Block),
        ]
        for header in headers {
            for end in 0..<header.count {
                #expect(ProxyHeader.parse(header[..<end]) == .incomplete, "prefix of \(end) bytes")
            }
            guard case .complete(_, header.count) = ProxyHeader.parse(header) else {
                Issue.record("whole header not complete")
                continue
            }
        }
    }

    @Test func chatBytesAfterTheHeaderAreLeftForTheClient() {
        let header = Array("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n".utf8)
        let stream = header + Array("alice@example.com\r\n".utf8)
        #expect(
            ProxyHeader.parse(stream)
                == .complete(.proxied(source: IPAddress("203.0.113.7")!, sourcePort: 56324), length: header.count))
    }

    @Test func garbageIsRefusedAtOnce() {
        #expect(ProxyHeader.parse(Array("alice@example.com\r\n".utf8)) == .invalid("not a PROXY protocol header"))
        #expect(ProxyHeader.parse(Array("GET / HTTP/1.1\r\n".utf8)) == .invalid("not a PROXY protocol header"))
        #expect(ProxyHeader.parse([0x16, 0x03, 0x01]) == .invalid("not a PROXY protocol header"))  // a TLS hello
        #expect(ProxyHeader.parse(Array("PROXX".utf8)) == .invalid("not a PROXY protocol header"))
        #expect(ProxyHeader.parse([UInt8]()) == .incomplete)
        #expect(ProxyHeader.parse(Array("PROX".utf8)) == .incomplete)
        #expect(ProxyHeader.parse([0x0D, 0x0A, 0x0D]) == .incomplete)
    }
}

@Suite struct IPAddressTests {
    @Test func parsesAndPrintsIPv4AndIPv6() {
        for (text, printed) in [
            ("192.0.2.1", "192.0.2.1"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
            ("2001:db8::1", "2001:db8::1"), ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), ("::", "::"), ("::1", "::1"),
            ("1::", "1::"), ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"), ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"), ("2001:db8::1:0", "2001:db8::1:0"),
            ("::ffff:192.0.2.7", "::ffff:192.0.2.7"), ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ] {
            #expect(IPAddress(text)?.description == printed, "\(text)")
        }
        for bad in [
            "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", " 1.2.3.4", "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3", ":1", "1:", "12345::1", "g::1", "::1.2.3", "1.2.3.4::", "fe80::1%eth0", ":::",
            "1:2:3:4:5:6:7::8:9",
        ] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        #expect(IPAddress("::ffff:192.0.2.7")?.mappedIPv4 == IPAddress("192.0.2.7"))
        #expect(IPAddress("2001:db8:1:2:ffff::9")?.prefix64 == "2001:db8:1:2::/64")
    }

    @Test func addressBlocks() throws {
        let loopback = try #require(IPNetwork("127.0.0.0/8"))
        #expect(loopback.contains(IPAddress("127.1.2.3")!))
        #expect(!loopback.contains(IPAddress("128.0.0.1")!))
        #expect(loopback.contains(IPAddress("::ffff:127.0.0.9")!))  // as a dual-stack socket reports it
        #expect(!loopback.contains(IPAddress("::1")!))
        let one = try #require(IPNetwork("10.1.2.3"))
        #expect(one.prefixLength == 32 && one.contains(IPAddress("10.1.2.3")!) && !one.contains(IPAddress("10.1.2.4")!))
        let v6 = try #require(IPNetwork("2001:db8::/33"))
        #expect(v6.contains(IPAddress("2001:db8:7fff::1")!) && !v6.contains(IPAddress("2001:db8:8000::1")!))
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPAddress("203.0.113.9")!))
        for bad in ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0/8", "x/8", "10.0.0.0/+8"] {
            #expect(IPNetwork(bad) == nil, "\(bad)")
        }
        #expect(IPNetwork.list("127.0.0.1/32, ::1/128")?.map(\.description) == ["127.0.0.1/32", "::1/128"])
        #expect(IPNetwork.list("127.0.0.1/32,nonsense") == nil)
        #expect(IPNetwork.list("")?.isEmpty == true)
    }
}
