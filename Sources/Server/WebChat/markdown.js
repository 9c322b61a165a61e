// Markdown for model output, rendered safely.
//
// Model output is untrusted. `parse` turns text into a small tree of plain objects, and `render`
// builds DOM nodes from it with createElement and text nodes only: no innerHTML, no attribute
// taken from the text except a link's href, and that only for http(s) and mailto URLs. HTML in the
// text is text. Images are shown as links (the page loads nothing the model names).
//
// Covered: ATX headings, paragraphs (single newlines kept as line breaks, as chat models write),
// fenced code blocks (``` or ~~~, an unclosed fence runs to the end, as while streaming),
// indented-free lists (ordered and not, nested by indentation), GFM pipe tables, block quotes,
// thematic breaks; inline code, **bold**, *italic*, ~~strike~~, [links](url), and backslash escapes.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$/;
const TABLE_DELIMITER = /^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$/;

/** Parses markdown text into block nodes: {type, ...}. */
export function parse(text) {
    const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    return parseBlocks(lines);
}

function parseBlocks(lines) {
    const blocks = [];
    let i = 0;
    while (i < lines.length) {
        const line = lines[i];
        if (line.trim() === "") { i++; continue; }

        let m = FENCE.exec(line);
        if (m) {
            const fence = m[1];
            const body = [];
            i++;
            while (i < lines.length && !isClosingFence(lines[i], fence)) body.push(lines[i++]);
            const closed = i < lines.length;
            if (closed) i++;
            blocks.push({ type: "code", language: m[2] || "", text: body.join("\n"), closed });
            continue;
        }
        if ((m = HEADING.exec(line))) {
            blocks.push({ type: "heading", level: m[1].length, inline: parseInline(m[2] || "") });
            i++;
            continue;
        }
        if (RULE.test(line) && !ITEM.test(line.replace(/^( *)[-*]( )/, "$1x$2"))) {
            blocks.push({ type: "rule" });
            i++;
            continue;
        }
        if (QUOTE.test(line)) {
            const inner = [];
            while (i < lines.length && lines[i].trim() !== "" && (QUOTE.test(lines[i]) || inner.length > 0 && !startsBlock(lines[i]))) {
                const q = QUOTE.exec(lines[i]);
                inner.push(q ? q[1] : lines[i]);
                i++;
            }
            blocks.push({ type: "quote", children: parseBlocks(inner) });
            continue;
        }
        if (ITEM.test(line)) {
            const [list, next] = parseList(lines, i);
            blocks.push(list);
            i = next;
            continue;
        }
        if (line.includes("|") && i + 1 < lines.length && TABLE_DELIMITER.test(lines[i + 1]) && lines[i + 1].includes("-")) {
            const header = splitRow(line);
            const aligns = splitRow(lines[i + 1]).map(cell => {
                const c = cell.trim();
                return c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : c.startsWith(":") ? "left" : "";
            });
            if (aligns.length === header.length) {
                i += 2;
                const rows = [];
                while (i < lines.length && lines[i].trim() !== "" && lines[i].includes("|") && !startsBlock(lines[i])) {
                    rows.push(splitRow(lines[i++]));
                }
                blocks.push({
                    type: "table", aligns,
                    header: header.map(parseInline),
                    rows: rows.map(r => header.map((_, c) => parseInline(r[c] ?? ""))),
                });
                continue;
            }
        }
        // A paragraph: lines up to a blank line or the start of another block.
        const para = [line];
        i++;
        while (i < lines.length && lines[i].trim() !== "" && !startsBlock(lines[i])) para.push(lines[i++]);
        blocks.push({ type: "paragraph", inline: parseInline(para.map(l => l.trim()).join("\n")) });
    }
    return blocks;
}

function isClosingFence(line, fence) {
    const t = line.trim();
    return t.length >= fence.length && t[0] === fence[0] && /^(`+|~+)$/.test(t);
}

function startsBlock(line) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

/** A list starting at `start`; items continue with lines indented past the marker. */
function parseList(lines, start) {
    const first = ITEM.exec(lines[start]);
    const indent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const list = { type: "list", ordered, start: ordered ? parseInt(first[2], 10) : 1, items: [] };
    let i = start;
    while (i < lines.length) {
        const m = ITEM.exec(lines[i]);
        if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
        const contentIndent = indent + m[2].length + 1;
        const body = [m[3] || ""];
        i++;
        let blank = false;
        while (i < lines.length) {
            const l = lines[i];
            if (l.trim() === "") { blank = true; body.push(""); i++; continue; }
            const lead = l.length - l.trimStart().length;
            const sub = ITEM.exec(l);
            if (sub && sub[1].length <= indent) break;            // a sibling (or an outer item)
            if (lead >= Math.min(contentIndent, indent + 2)) {      // the item's own content or a nested list
                body.push(l.slice(Math.min(lead, contentIndent)));
                blank = false;
                i++;
                continue;
            }
            if (!blank && !startsBlock(l)) { body.push(l.trim()); i++; continue; }  // a lazy continuation line
            break;
        }
        while (body.length && body[body.length - 1] === "") body.pop();
        list.items.push(parseBlocks(body));
        // A blank line then something that isn't an item at this indent ends the list.
        if (i < lines.length) {
            const next = ITEM.exec(lines[i]);
            if (!next || next[1].length !== indent) break;
        }
    }
    return [list, i];
}

function splitRow(line) {
    let t = line.trim();
    if (t.startsWith("|")) t = t.slice(1);
    if (t.endsWith("|") && !t.endsWith("\\|")) t = t.slice(0, -1);
    const cells = [];
    let cell = "";
    for (let i = 0; i < t.length; i++) {
        if (t[i] === "\\" && t[i + 1] === "|") { cell += "|"; i++; continue; }
        if (t[i] === "|") { cells.push(cell.trim()); cell = ""; continue; }
        cell += t[i];
    }
    cells.push(cell.trim());
    return cells;
}

// ---- Inline ----------------------------------------------------------------------------------

const INLINE_RULES = [
    { type: "code", re: /(`+)([\s\S]*?[^`])\1(?!`)/y },
    { type: "image", re: /!\[([^\]\n]*)\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+"[^"]*")?\s*\)/y },
    { type: "link", re: /\[((?:\\.|[^\]\\\n])+)\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+"[^"]*")?\s*\)/y },
    { type: "strong", re: /\*\*(?=\S)([\s\S]*?\S)\*\*(?!\*)/y },
    { type: "strong", re: /__(?=\S)([\s\S]*?\S)__(?![\w_])/y },
    { type: "strike", re: /~~(?=\S)([\s\S]*?\S)~~/y },
    { type: "em", re: /\*(?=[^\s*])((?:\*\*[\s\S]*?\*\*|[^*])*?[^\s*])\*(?!\*)/y },
    { type: "em", re: /_(?=\S)([^_]*?\S)_(?![\w])/y },
];

/** Parses inline markdown into nodes: {type: "text"|"break"|"code"|"link"|"strong"|"em"|"strike", ...}. */
export function parseInline(text) {
    const out = [];
    let plain = "";
    const flush = () => { if (plain) { out.push({ type: "text", text: plain }); plain = ""; } };
    for (let i = 0; i < text.length;) {
        const c = text[i];
        if (c === "\\" && i + 1 < text.length && /[\\`*_{}\[\]()#+\-.!|~<>"']/.test(text[i + 1])) {
            plain += text[i + 1];
            i += 2;
            continue;
        }
        if (c === "\n") { flush(); out.push({ type: "break" }); i++; continue; }
        if (c === "`" || c === "*" || c === "_" || c === "~" || c === "[" || c === "!") {
            // `_` inside a word (snake_case) is a letter, not emphasis.
            if (c === "_" && i > 0 && /\w/.test(text[i - 1])) { plain += c; i++; continue; }
            let matched = null;
            for (const rule of INLINE_RULES) {
                rule.re.lastIndex = i;
                const m = rule.re.exec(text);
                if (m) { matched = { rule, m }; break; }
            }
            if (matched) {
                flush();
                const { rule, m } = matched;
                switch (rule.type) {
                case "code": out.push({ type: "code", text: m[2].replace(/^ (.*) $/s, "$1") }); break;
                case "image": out.push({ type: "link", href: m[2], children: [{ type: "text", text: `image: ${m[1] || m[2]}` }] }); break;
                case "link": out.push({ type: "link", href: m[2], children: parseInline(m[1]) }); break;
                default: out.push({ type: rule.type, children: parseInline(m[1]) });
                }
                i += m[0].length;
                continue;
            }
        }
        plain += c;
        i++;
    }
    flush();
    return out;
}

// ---- DOM -------------------------------------------------------------------------------------

/** Whether `href` is a link the page may follow: http(s) or mailto, absolute. */
export function safeHref(href) {
    try {
        const url = new URL(href);
        return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
    } catch {
        return null;
    }
}

/** Renders markdown text into a DocumentFragment. */
export function render(text, doc = document) {
    const fragment = doc.createDocumentFragment();
    for (const block of parse(text)) fragment.append(renderBlock(block, doc));
    return fragment;
}

function el(doc, tag, className) {
    const e = doc.createElement(tag);
    if (className) e.className = className;
    return e;
}

function renderBlock(block, doc) {
    switch (block.type) {
    case "heading": {
        const h = el(doc, `h${Math.min(block.level + 2, 6)}`);
        h.append(...renderInline(block.inline, doc));
        return h;
    }
    case "paragraph": {
        const p = el(doc, "p");
        p.append(...renderInline(block.inline, doc));
        return p;
    }
    case "rule": return el(doc, "hr");
    case "quote": {
        const q = el(doc, "blockquote");
        for (const b of block.children) q.append(renderBlock(b, doc));
        return q;
    }
    case "list": {
        const list = el(doc, block.ordered ? "ol" : "ul");
        if (block.ordered && block.start !== 1) list.start = block.start;
        for (const item of block.items) {
            const li = el(doc, "li");
            // A one-paragraph item renders without its <p>, as tight lists do.
            if (item.length === 1 && item[0].type === "paragraph") li.append(...renderInline(item[0].inline, doc));
            else for (const b of item) li.append(renderBlock(b, doc));
            list.append(li);
        }
        return list;
    }
    case "table": {
        const wrap = el(doc, "div", "table-wrap");
        const table = el(doc, "table");
        const head = el(doc, "thead");
        const tr = el(doc, "tr");
        block.header.forEach((cell, c) => tr.append(renderCell(doc, "th", cell, block.aligns[c])));
        head.append(tr);
        const body = el(doc, "tbody");
        for (const row of block.rows) {
            const r = el(doc, "tr");
            row.forEach((cell, c) => r.append(renderCell(doc, "td", cell, block.aligns[c])));
            body.append(r);
        }
        table.append(head, body);
        wrap.append(table);
        return wrap;
    }
    case "code": {
        const box = el(doc, "div", "code-block");
        const bar = el(doc, "div", "code-bar");
        const lang = el(doc, "span", "code-lang");
        lang.textContent = block.language || "text";
        const copy = el(doc, "button", "code-copy");
        copy.type = "button";
        copy.textContent = "Copy";
        copy.dataset.action = "copy-code";
        bar.append(lang, copy);
        const pre = el(doc, "pre");
        const code = el(doc, "code");
        code.textContent = block.text;
        pre.append(code);
        box.append(bar, pre);
        return box;
    }
    default: {
        const p = el(doc, "p");
        p.textContent = "";
        return p;
    }
    }
}

function renderCell(doc, tag, inline, align) {
    const cell = el(doc, tag);
    if (align) cell.style.textAlign = align;
    cell.append(...renderInline(inline, doc));
    return cell;
}

function renderInline(nodes, doc) {
    return nodes.map(node => {
        switch (node.type) {
        case "text": return doc.createTextNode(node.text);
        case "break": return el(doc, "br");
        case "code": {
            const c = el(doc, "code");
            c.textContent = node.text;
            return c;
        }
        case "link": {
            const href = safeHref(node.href);
            if (!href) {
                // Not a followable link: shown as its text and, in brackets, the target as text.
                const span = el(doc, "span", "unsafe-link");
                span.append(...renderInline(node.children, doc), doc.createTextNode(` (${node.href})`));
                return span;
            }
            const a = el(doc, "a");
            a.href = href;
            a.target = "_blank";
            a.rel = "noopener noreferrer nofollow";
            a.append(...renderInline(node.children, doc));
            return a;
        }
        case "strong": case "em": case "strike": {
            const e = el(doc, node.type === "strike" ? "s" : node.type);
            e.append(...renderInline(node.children, doc));
            return e;
        }
        default: return doc.createTextNode("");
        }
    });
}
