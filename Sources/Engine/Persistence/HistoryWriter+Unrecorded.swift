import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The URL states a stop could not write (its time limit was up: another process held the store's lock),
/// kept beside the store in the state file format (``StateStore``) and written there at the next start.
extension HistoryWriter {
    /// The file beside the store at `storePath` (`DIR/urlpoll.sqlite`) that keeps the states a stop could
    /// not write: `DIR/urlpoll.sqlite.unrecorded.json`.
    public static func unrecordedPath(beside storePath: String) -> String {
        storePath + ".unrecorded.json"
    }

    /// `saved` (the store's states) with the newer ones the last stop could not write put in their place,
    /// and how many were taken from the file; the file's own states when it cannot be read are none.
    public static func merging(_ saved: [State], unrecordedAt path: String) -> (states: [State], taken: Int) {
        guard access(path, F_OK) == 0, let kept = try? StateStore(path: path).load(), !kept.isEmpty else {
            return (saved, 0)
        }
        var byKey: [HistoryKey: State] = [:]
        for state in saved { byKey[state.historyKey] = state }
        var taken = 0
        for state in kept where (byKey[state.historyKey]?.checkedAt ?? -.infinity) < state.checkedAt {
            byKey[state.historyKey] = state
            taken += 1
        }
        return (Array(byKey.values), taken)
    }

    /// Writes the states the last stop kept in ``unrecordedPath`` to the store and removes the file; a
    /// file that cannot be written yet (the lock is still held) is kept for the next start.
    func writeUnrecorded() async {
        guard let path = self.unrecordedPath, access(path, F_OK) == 0 else { return }
        let states: [State]
        do {
            states = try StateStore(path: path).load()
        } catch {
            self.logger.warning("\(path) is not read: \(error.description); it is removed")
            unlink(path)
            return
        }
        var batch = HistoryBatch()
        for state in states { batch.states[state.historyKey] = state }
        do {
            try await self.store.write(batch)
            unlink(path)
            self.logger.info(
                "\(states.count.counted("URL state")) the last stop could not write \(states.count.agreeing("is", "are")) written from \(path)"
            )
        } catch {
            self.logger.warning("\(error.description): \(path) is kept, and written at the next start")
        }
    }

    /// Keeps `states` (those a stop could not write) in ``unrecordedPath``; returns the words for the stop's
    /// line.
    func keepUnrecorded(_ states: [State]) -> String {
        guard let path = self.unrecordedPath, !states.isEmpty else {
            return "the URLs' states are written again as they are polled at the next start"
        }
        do {
            try StateStore(path: path).save(states)
            return
                "\(states.count.counted("URL state")) \(states.count.agreeing("is", "are")) kept in \(path) and written to the store at the next start"
        } catch {
            return
                "the URLs' states are written again as they are polled at the next start (\(path) cannot be written: \(error))"
        }
    }
}
