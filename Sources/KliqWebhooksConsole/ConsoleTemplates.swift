/// The console's pages, as Mustache templates (swift-mustache): `{{value}}` is HTML-escaped, so
/// everything that came from the wire is escaped; `{{{content}}}` is only ever another rendered page.
enum ConsoleTemplates {
    static let layout = #"""
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="csrf-token" content="{{csrf}}">
    <title>{{title}} · kliq-webhooks</title><link rel="stylesheet" href="/assets/console.css"></head>
    <body><header><strong>kliq-webhooks</strong>
    <nav><a href="/">Overview</a><a href="/events">Events</a><a href="/dead">Dead letters</a><a href="/jobs">Jobs</a></nav></header>
    <main>{{{content}}}</main><script src="/assets/console.js"></script></body></html>
    """#

    static let overview = #"""
    <h1>Overview</h1>
    <table class="stats"><tbody>
    <tr><th>Accepted</th><td data-stat="accepted">{{accepted}}</td></tr>
    <tr><th>Duplicates</th><td data-stat="duplicates">{{duplicates}}</td></tr>
    <tr><th>Pending</th><td data-stat="pending">{{pending}}</td></tr>
    <tr><th>Retrying</th><td data-stat="retrying">{{retrying}}</td></tr>
    <tr><th>Dead</th><td data-stat="dead"><a href="/dead">{{dead}}</a></td></tr>
    </tbody></table>
    <h2>Refused</h2>
    <table class="refused"><tbody id="refused">{{#refused}}<tr><th>{{code}}</th><td>{{count}}</td></tr>{{/refused}}</tbody></table>
    <p class="muted">Accepted, duplicates and refusals since this process started; pending, retrying and dead are
    what the store holds. Updated every 5 s.</p>
    """#

    static let events = #"""
    <h1>Events</h1>
    <form method="get" action="/events" class="filters">
    <label>Type <input name="type" value="{{type}}" placeholder="cv.job.completed"></label>
    <label>Handler state <select name="state">{{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/states}}</select></label>
    <label>Job <input name="jobId" value="{{jobId}}"></label>
    <label>Since <input name="since" value="{{since}}" placeholder="2026-04-28T00:00:00Z"></label>
    <label>Until <input name="until" value="{{until}}"></label>
    <button>Filter</button></form>
    {{> eventTable}}
    {{#next}}<p><a href="{{next}}" rel="next">Next page</a></p>{{/next}}
    """#

    static let eventTable = #"""
    <table class="events"><thead><tr><th>#</th><th>Event</th><th>Type</th><th>Job</th><th>Accepted</th><th>Handlers</th></tr></thead><tbody>
    {{#items}}<tr><td>{{sequence}}</td><td><a href="/events/{{idPath}}">{{id}}</a></td><td>{{type}}</td><td>{{#jobPath}}<a href="/jobs/{{jobPath}}">{{jobId}}</a>{{/jobPath}}</td><td>{{acceptedAt}}</td><td>{{#handlers}}<span class="state {{state}}">{{name}}: {{state}}</span> {{/handlers}}</td></tr>
    {{/items}}</tbody></table>
    {{^items}}<p class="muted">No events match.</p>{{/items}}
    """#

    static let event = #"""
    <h1>Event <code>{{id}}</code></h1>
    <dl><dt>Type</dt><dd>{{type}}</dd><dt>Job</dt><dd>{{#jobPath}}<a href="/jobs/{{jobPath}}">{{jobId}}</a>{{/jobPath}}</dd>
    <dt>Accepted</dt><dd>{{acceptedAt}}</dd><dt>Sequence</dt><dd>{{sequence}}</dd>
    <dt>Body</dt><dd>{{bytes}} bytes, SHA-256 <code>{{sha256}}</code></dd></dl>
    <h2>Handlers</h2>
    {{#handlers}}<section class="handler"><h3>{{name}} <span class="state {{state}}">{{state}}</span></h3>
    <ol class="timeline">{{#attempts}}<li class="{{outcome}}"><time>{{at}}</time> {{outcome}}{{#error}}: <code>{{error}}</code>{{/error}}{{#nextAttemptAt}} · next try {{nextAttemptAt}}{{/nextAttemptAt}}</li>{{/attempts}}</ol>
    </section>{{/handlers}}
    {{^handlers}}<p class="muted">No handler deliveries.</p>{{/handlers}}
    <p><button type="button" data-redrive="/api/events/{{idPath}}/redrive">Re-drive this event</button> <output class="result"></output></p>
    <h2>Body</h2><pre class="body">{{body}}</pre>
    """#

    static let dead = #"""
    <h1>Dead letters</h1>
    <form method="get" action="/dead" class="filters">
    <label>Type <input name="type" value="{{type}}"></label><label>Job <input name="jobId" value="{{jobId}}"></label>
    <button>Filter</button></form>
    <p><strong data-dead-count>{{count}}</strong> dead event{{^one}}s{{/one}} match.
    {{#count}}<button type="button" data-bulk-redrive data-expected="{{count}}" data-filter="{{filter}}">Re-drive all {{count}}</button> <output class="result"></output>{{/count}}</p>
    {{> eventTable}}
    """#

    static let jobs = #"""
    <h1>Jobs</h1>
    <form method="get" action="/jobs" class="filters">
    <label>Status <input name="status" value="{{status}}" placeholder="completed"></label>
    <label>Model <input name="model" value="{{model}}" placeholder="shelf-detection-v2"></label>
    <label>Updated since <input name="since" value="{{since}}"></label>
    <button>Filter</button></form>
    <table class="jobs"><thead><tr><th>Job</th><th>Status</th><th>Model</th><th>Updated</th></tr></thead><tbody>
    {{#items}}<tr><td><a href="/jobs/{{idPath}}">{{id}}</a></td><td><span class="status {{status}}">{{status}}</span></td><td>{{model}}</td><td>{{updatedAt}}</td></tr>
    {{/items}}</tbody></table>
    {{^items}}<p class="muted">No jobs match.</p>{{/items}}
    {{#next}}<p><a href="{{next}}" rel="next">Next page</a></p>{{/next}}
    """#

    static let job = #"""
    <h1>Job <code>{{id}}</code> <span class="status {{status}}">{{status}}</span></h1>
    <dl><dt>Model</dt><dd>{{model}}</dd><dt>Observation</dt><dd>{{observationId}}</dd><dt>Updated</dt><dd>{{updatedAt}}</dd>
    {{#source}}<dt>Found by</dt><dd>{{source}}</dd>{{/source}}{{#error}}<dt>Error</dt><dd><code>{{error}}</code></dd>{{/error}}</dl>
    {{#frame}}<h2>Detections</h2>
    <svg class="frame" viewBox="0 0 {{width}} {{height}}" role="img" aria-label="{{count}} detections">
    <rect class="frame-border" x="0" y="0" width="{{width}}" height="{{height}}"></rect>
    {{#boxes}}<g><rect class="detection" x="{{x}}" y="{{y}}" width="{{w}}" height="{{h}}"><title>{{objectName}}</title></rect><text class="label" x="{{x}}" y="{{labelY}}">{{objectName}}</text></g>
    {{/boxes}}</svg>{{/frame}}
    {{#hasDetections}}<table class="detections"><thead><tr><th>Object</th><th>Confidence</th><th>Box (x, y, w, h)</th><th>Attributes</th></tr></thead><tbody>
    {{#detections}}<tr><td>{{objectName}}</td><td>{{confidence}}</td><td>{{box}}</td><td><code>{{attributes}}</code></td></tr>
    {{/detections}}</tbody></table>{{/hasDetections}}
    {{#summary}}<h2>Summary</h2><pre>{{summary}}</pre>{{/summary}}
    <h2>Events</h2>
    {{> eventTable}}
    """#

    static let signIn = #"""
    <h1>Sign in</h1>
    <form method="post" action="/sign-in" class="sign-in"><label>Admin token <input type="password" name="token" autocomplete="current-password" autofocus></label>
    <button>Sign in</button></form>
    {{#failed}}<p class="error">That is not this console's token.</p>{{/failed}}
    """#
}
