import Mustache

// swift-mustache finds a `{{name}}` in a value through `Mirror` unless the value is a `MustacheParent`;
// Mirror builds the list of all of a value's properties on every lookup, and a lookup that misses goes on
// up the context stack, so at 500 URL rows (about 20 lookups each) rendering the page took 0.12-0.18 s of
// CPU (release build, 2,000 URLs, 500 rows); with each value answering its names here, 0.03-0.05 s.

extension StatusPage.Page: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "title": self.title
        case "refresh": self.refresh
        case "counts": self.counts
        case "attention": self.attention
        case "groups": self.groups
        case "hidden": self.hidden
        case "incidents": self.incidents
        case "noIncidents": self.noIncidents
        case "updated": self.updated
        default: nil
        }
    }
}

extension StatusPage.Count: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "state": self.state
        case "count": self.count
        case "link": self.link
        default: nil
        }
    }
}

extension StatusPage.Group: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "name": self.name
        case "heading": self.heading
        case "urls": self.urls
        default: nil
        }
    }
}

extension StatusPage.URLRow: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "anchor": self.anchor
        case "url": self.url
        case "name": self.name
        case "target": self.target
        case "state": self.state
        case "numbers": self.numbers
        case "detail": self.detail
        case "history": self.history
        case "dayCount": self.dayCount
        case "daysWidth": self.daysWidth
        case "days": self.days
        case "line": self.line
        case "dots": self.dots
        case "latencyTitle": self.latencyTitle
        default: nil
        }
    }
}

extension StatusPage.Bar: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "x": self.x
        case "cls": self.cls
        case "title": self.title
        default: nil
        }
    }
}

extension StatusPage.Point: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "x": self.x
        case "y": self.y
        default: nil
        }
    }
}

extension StatusPage.Incident: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "url": self.url
        case "name": self.name
        case "to": self.to
        case "when": self.when
        case "change": self.change
        case "status": self.status
        case "detail": self.detail
        case "span": self.span
        case "anchor": self.anchor
        default: nil
        }
    }
}

extension StatusPage.Attention: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "urls": self.urls
        case "more": self.more
        default: nil
        }
    }
}

extension StatusPage.Problem: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "anchor": self.anchor
        case "name": self.name
        case "state": self.state
        case "status": self.status
        case "since": self.since
        case "detail": self.detail
        default: nil
        }
    }
}
