import GRDB

/// MultiRowInsert gathers the rows of one `INSERT` (or upsert) and writes them as multi-row statements,
/// `INSERT INTO t (a, b) VALUES (?, ?), (?, ?), … tail` (<https://sqlite.org/lang_insert.html>), up to
/// ``rowsPerStatement`` rows each: one statement step, and one call through GRDB, per few hundred rows
/// instead of per row. SQLite handles the rows of one statement in order, as that many one-row statements
/// would: an upsert's `ON CONFLICT … DO UPDATE` (the `tail`) sees the rows inserted before it.
///
/// A batch of fewer rows is written as statements of 128, 64, … 1 rows (its count in binary), so each
/// connection caches at most eight statements per insert besides the full one.
struct MultiRowInsert {
    /// Rows per full statement: 256 rows of 13 columns bind 3,328 values, within SQLite's limit of 32,766
    /// (<https://sqlite.org/limits.html#max_variable_number>).
    static let rowsPerStatement = 256

    private let db: Database
    /// `INSERT INTO t (a, b)`.
    private let head: String
    /// What follows the values: `ON CONFLICT …`, or empty.
    private let tail: String
    private let columns: Int
    private var pending: [DatabaseValue] = []

    init(_ db: Database, _ head: String, columns: Int, tail: String = "") {
        self.db = db
        self.head = head
        self.tail = tail
        self.columns = columns
        self.pending.reserveCapacity(columns * Self.rowsPerStatement)
    }

    /// Adds one row (``columns`` values); writes the full statement once ``rowsPerStatement`` rows wait.
    mutating func append(_ values: (any DatabaseValueConvertible)?...) throws {
        precondition(values.count == self.columns, "a row of \(values.count) values for \(self.columns) columns")
        for value in values { self.pending.append(value?.databaseValue ?? .null) }
        if self.pending.count == self.columns * Self.rowsPerStatement { try self.flush() }
    }

    /// Writes the rows that wait.
    mutating func flush() throws {
        var start = 0
        var rows = self.pending.count / self.columns
        var size = Self.rowsPerStatement
        while rows > 0 {
            if rows >= size {
                let statement = try self.db.cachedStatement(sql: self.sql(rows: size))
                let end = start + size * self.columns
                try statement.execute(arguments: StatementArguments(self.pending[start..<end]))
                start = end
                rows -= size
            } else {
                size /= 2
            }
        }
        self.pending.removeAll(keepingCapacity: true)
    }

    private func sql(rows: Int) -> String {
        let row = "(" + repeatElement("?", count: self.columns).joined(separator: ",") + ")"
        return self.head + " VALUES " + repeatElement(row, count: rows).joined(separator: ",") + " " + self.tail
    }
}
