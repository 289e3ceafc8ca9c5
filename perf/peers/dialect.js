'use strict';
// What the benchmark peers share of ringcast's dialect (perf/peers/README.md).

// Channel names are restricted to the same characters ringcast accepts, so they
// never need JSON escaping and the message text matches ringcast's byte for byte.
const NAME_RE = /^[A-Za-z0-9_\-.:@/=+]{1,256}$/;

// `data` must go out exactly as the client wrote it (the load generator reads a
// timestamp from it and compares bytes), so it is cut out of the raw text rather
// than re-serialised with JSON.stringify.
function rawData(text) {
    // text is known-valid JSON (JSON.parse accepted it) whose top level is an
    // object: walk it, note each top-level key, and return the raw value of "data".
    let depth = 0;
    let keyStart = -1;
    let key = null;
    let valStart = -1;
    for (let j = 0; j < text.length; j++) {
        const c = text[j];
        if (c === '"') {
            const s = j;
            for (j++; text[j] !== '"'; j++) if (text[j] === '\\') j++;
            if (depth === 1 && valStart < 0 && keyStart < 0) keyStart = s;
            if (depth === 1 && keyStart === s) key = text.slice(s, j + 1);
            continue;
        }
        if (c === ':' && depth === 1 && keyStart >= 0) {
            keyStart = -1;
            if (key === '"data"') valStart = j + 1;
            continue;
        }
        if (c === '{' || c === '[') depth++;
        else if (c === '}' || c === ']') depth--;
        if (depth === 0 || (depth === 1 && c === ',')) {
            if (valStart >= 0) return text.slice(valStart, j).trim();
            keyStart = -1;
        }
    }
    return null;
}

module.exports = { NAME_RE, rawData };
