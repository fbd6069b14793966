import Testing

@testable import ChatCore

@Suite struct TextSanitizerTests {
    @Test func plainTextIsUntouched() {
        #expect(TextSanitizer.sanitize("hello, world! ü 日本 😀") == "hello, world! ü 日本 😀")
    }

    @Test func controlCharactersAreRemoved() {
        #expect(TextSanitizer.sanitize("a\u{0}b\u{7}c\u{8}d\u{7F}e\u{85}f") == "abcdef")
        #expect(TextSanitizer.sanitize("a\tb") == "a b")
    }

    @Test func escapeSequencesAreRemovedWhole() {
        #expect(TextSanitizer.sanitize("\u{1B}[31mred\u{1B}[0m") == "red")
        #expect(TextSanitizer.sanitize("\u{1B}]0;pwned title\u{7}after") == "after")
        #expect(TextSanitizer.sanitize("\u{1B}]8;;http://x\u{1B}\\link") == "link")
        #expect(TextSanitizer.sanitize("\u{1B}cclear") == "clear")
        #expect(TextSanitizer.sanitize("\u{9B}2Jx") == "x")
    }

    @Test func bidiOverridesAreRemoved() {
        #expect(TextSanitizer.sanitize("abc\u{202E}def\u{2066}g\u{2069}") == "abcdefg")
    }
}
