/**
 * A deliberately tiny XML reader for vendor search answers: it finds the elements named
 * `recordElement` and, in each, the text of the wanted child elements (or attributes of the
 * record element). It is not a general XML parser and is safe by construction:
 * - any "<!" declaration other than a comment or CDATA (DOCTYPE, ENTITY, …) is refused, so no
 *   entity — internal or external — can be defined, let alone expanded;
 * - only the five predefined entities and numeric character references are decoded;
 * - it scans once, left to right, with indexOf (linear time, no backtracking regex on the input);
 * - callers bound the input size, and the number of records is capped.
 */

export class XmlRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlRefused';
  }
}

export interface XmlRecord {
  /** Field name → text (first occurrence), from child elements at any depth or the record's attributes. */
  fields: Record<string, string>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*/;

function localName(qname: string): string {
  const i = qname.indexOf(':');
  return i >= 0 ? qname.slice(i + 1) : qname;
}

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const cp = e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
  });
}

function parseAttributes(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/([A-Za-z_][A-Za-z0-9_.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    const name = localName(m[1] ?? '');
    if (!(name in out)) out[name] = decodeEntities(m[2] ?? m[3] ?? '');
  }
  return out;
}

/** Index of the ">" closing the tag that starts at `from`, skipping quoted attribute values. */
function tagEnd(xml: string, from: number): number {
  let quote: string | undefined;
  for (let i = from; i < xml.length; i++) {
    const c = xml[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return i;
  }
  return -1;
}

export function extractRecords(xml: string, recordElement: string, fields: readonly string[], maxRecords = 10_000): XmlRecord[] {
  const wanted = new Set(fields);
  const out: XmlRecord[] = [];
  const stack: string[] = [];
  let record: { depth: number; fields: Record<string, string> } | undefined;
  /** The wanted field being read: its name, depth and text so far. */
  let field: { name: string; depth: number; text: string } | undefined;
  let pos = 0;
  const push = (fields: Record<string, string>) => {
    out.push({ fields });
    if (out.length > maxRecords) throw new XmlRefused(`more than ${maxRecords} records`);
  };

  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos);
    const textEnd = lt < 0 ? xml.length : lt;
    if (field && textEnd > pos) field.text += decodeEntities(xml.slice(pos, textEnd));
    if (lt < 0) break;
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt + 4);
      if (end < 0) throw new XmlRefused('unterminated comment');
      pos = end + 3;
      continue;
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      const end = xml.indexOf(']]>', lt + 9);
      if (end < 0) throw new XmlRefused('unterminated CDATA section');
      if (field) field.text += xml.slice(lt + 9, end);
      pos = end + 3;
      continue;
    }
    if (xml.startsWith('<!', lt)) throw new XmlRefused('DOCTYPE and entity declarations are refused');
    if (xml.startsWith('<?', lt)) {
      const end = xml.indexOf('?>', lt + 2);
      if (end < 0) throw new XmlRefused('unterminated processing instruction');
      pos = end + 2;
      continue;
    }
    const end = tagEnd(xml, lt + 1);
    if (end < 0) throw new XmlRefused('unterminated tag');
    const inner = xml.slice(lt + 1, end);
    pos = end + 1;
    if (inner.startsWith('/')) {
      const name = localName(inner.slice(1).trim());
      // Close up to the matching element (lenient about unclosed children, strict about strays).
      const idx = stack.lastIndexOf(name);
      if (idx < 0) throw new XmlRefused(`unexpected closing tag </${name}>`);
      stack.length = idx;
      if (field && stack.length <= field.depth) {
        if (record && !(field.name in record.fields)) record.fields[field.name] = field.text.trim();
        field = undefined;
      }
      if (record && stack.length <= record.depth) {
        push(record.fields);
        record = undefined;
      }
      continue;
    }
    const m = NAME.exec(inner);
    if (!m) throw new XmlRefused('malformed tag');
    const name = localName(m[0]);
    const selfClosing = inner.endsWith('/');
    const attrs = inner.slice(m[0].length, selfClosing ? -1 : undefined);
    const depth = stack.length;
    if (!record && name === recordElement) {
      record = { depth, fields: {} };
      for (const [k, v] of Object.entries(parseAttributes(attrs))) if (wanted.has(k)) record.fields[k] = v;
      if (selfClosing) {
        push(record.fields);
        record = undefined;
        continue;
      }
    } else if (record && !field && wanted.has(name)) {
      if (selfClosing) {
        if (!(name in record.fields)) record.fields[name] = '';
        continue;
      }
      field = { name, depth, text: '' };
    }
    if (!selfClosing) stack.push(name);
  }
  if (record) throw new XmlRefused(`unterminated <${recordElement}> element`);
  return out;
}
