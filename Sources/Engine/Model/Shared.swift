/// Shared keeps a value's fields behind one reference and copies them on write.
///
/// State and Target are copied into every Resource, the monitor's map, the timer queue and each report;
/// behind one reference, 100,000 URLs' states take one copy each, and moving a Resource costs a retain
/// instead of one per field.
struct Shared<Fields: Sendable & Hashable>: Sendable, Hashable {
    /// Holds the fields; changed in place only while the one value that refers to it is being mutated.
    private final class Box: @unchecked Sendable {
        var fields: Fields

        init(_ fields: Fields) {
            self.fields = fields
        }
    }

    private var box: Box

    init(_ fields: Fields) {
        self.box = Box(fields)
    }

    /// Read in place (`_read`), so reading one field does not copy, and retain, all of them.
    var fields: Fields {
        _read { yield self.box.fields }
        _modify {
            if !isKnownUniquelyReferenced(&self.box) { self.box = Box(self.box.fields) }
            yield &self.box.fields
        }
    }

    /// Whether both values are the one set of fields: a copy not written to since (so equal, and cheap to
    /// tell).
    func isIdentical(to other: Self) -> Bool {
        self.box === other.box
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.box === rhs.box || lhs.box.fields == rhs.box.fields
    }

    func hash(into hasher: inout Hasher) {
        self.box.fields.hash(into: &hasher)
    }
}
