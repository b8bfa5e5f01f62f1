extension Int {
    /// This count and a noun that agrees with it, for log lines and messages: `1.counted("poll")` is
    /// "1 poll", `2.counted("poll")` "2 polls", `0.counted("URL state")` "0 URL states". `plural` when
    /// adding "s" does not make it.
    public func counted(_ singular: String, _ plural: String? = nil) -> String {
        "\(self) \(self.agreeing(singular, plural ?? singular + "s"))"
    }

    /// `singular` for a count of 1, otherwise `plural`: the verb after a ``counted(_:_:)`` noun
    /// (`n.agreeing("is", "are")`).
    public func agreeing(_ singular: String, _ plural: String) -> String {
        self == 1 ? singular : plural
    }
}
