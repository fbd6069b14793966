import Testing

@testable import RedisClient

/// What the Sentinel client reads: the sentinels' addresses as configured, and the
/// `+switch-master` messages they publish.
@Suite struct RedisSentinelTests {
    @Test func sentinelAddressesAreHostAndPortPairs() {
        #expect(
            RedisAddress.list(parsing: "10.0.0.1:26379, sentinel-b.example.com:26380,[::1]:26381")
                == [
                    RedisAddress(host: "10.0.0.1", port: 26379),
                    RedisAddress(host: "sentinel-b.example.com", port: 26380),
                    RedisAddress(host: "::1", port: 26381),
                ])
        #expect(RedisAddress(host: "::1", port: 26381).description == "[::1]:26381")
        for bad in ["", ",", "host", "host:", ":26379", "host:0", "host:65536", "host:port", "redis://h:1", "a:1,b"] {
            #expect(RedisAddress.list(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func aSwitchMasterMessageNamesTheOldAndTheNewPrimary() {
        let message = RESPValue.push([
            .bulk("message"), .bulk("+switch-master"), .bulk("chat 127.0.0.1 6379 10.0.0.7 6380"),
        ])
        let change = RedisSentinel.Switch(push: message)
        #expect(change?.masterName == "chat")
        #expect(change?.from == RedisAddress(host: "127.0.0.1", port: 6379))
        #expect(change?.to == RedisAddress(host: "10.0.0.7", port: 6380))
        // Anything else on the connection is not a switch.
        #expect(RedisSentinel.Switch(push: .push([.bulk("subscribe"), .bulk("+switch-master"), .integer(1)])) == nil)
        #expect(
            RedisSentinel.Switch(push: .push([.bulk("message"), .bulk("+sdown"), .bulk("master chat 1 2")])) == nil)
        #expect(
            RedisSentinel.Switch(push: .push([.bulk("message"), .bulk("+switch-master"), .bulk("chat 1 x 2 3")]))
                == nil)
    }
}
