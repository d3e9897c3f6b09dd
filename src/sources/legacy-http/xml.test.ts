import { describe, expect, it } from 'vitest';
import { AvayaStrategy, parseAvayaKey, sortSegments } from './avaya-profile.js';
import { XmlRefused, decodeEntities, extractRecords } from './xml.js';

const fieldsOf = (xml: string, rec = 'result', fields = ['inum', 'startedat']) => extractRecords(xml, rec, fields).map((r) => r.fields);

describe('the small XML reader', () => {
  it('extracts records in document order from child elements and attributes, ignoring other elements', () => {
    const xml = `<?xml version="1.0"?>
      <!-- a comment with <result> inside -->
      <acr:searchresults xmlns:acr="urn:avaya">
        <acr:result><acr:inum>101</acr:inum><agent><inum>not-this</inum></agent><startedat>2026-01-01T10:00:00Z</startedat></acr:result>
        <result inum="102" startedat="2026-01-01T09:00:00Z"/>
        <result><inum><![CDATA[10<3]]></inum><extra a="x>y"/></result>
        <result><other>no inum</other></result>
      </acr:searchresults>`;
    expect(fieldsOf(xml)).toEqual([{ inum: '101', startedat: '2026-01-01T10:00:00Z' }, { inum: '102', startedat: '2026-01-01T09:00:00Z' }, { inum: '10<3' }, {}]);
  });

  it('decodes only the predefined entities and character references', () => {
    expect(decodeEntities('a&lt;b&gt;&amp;&quot;&apos;&#65;&#x42;&unknown;')).toBe(`a<b>&"'AB&unknown;`);
    expect(fieldsOf('<r><result><inum>1&amp;2</inum></result></r>')).toEqual([{ inum: '1&2' }]);
  });

  it('refuses DOCTYPE and ENTITY declarations (no expansion of any kind)', () => {
    const xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><result><inum>&x;</inum></result></r>';
    expect(() => extractRecords(xxe, 'result', ['inum'])).toThrow(XmlRefused);
    const laughs = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><r>&lol2;</r>';
    expect(() => extractRecords(laughs, 'result', ['inum'])).toThrow(/DOCTYPE/);
    expect(() => extractRecords('<r><result><!ENTITY x "y"></result></r>', 'result', ['inum'])).toThrow(XmlRefused);
  });

  it('refuses malformed input instead of guessing', () => {
    expect(() => extractRecords('<r><result><inum>1</inum>', 'result', ['inum'])).toThrow(/unterminated <result>/);
    expect(() => extractRecords('<r><!-- open', 'result', ['inum'])).toThrow(/comment/);
    expect(() => extractRecords('<r></x>', 'result', ['inum'])).toThrow(/closing/);
    expect(() => extractRecords('<r><result', 'result', ['inum'])).toThrow(/tag/);
    expect(() => extractRecords('<r>' + '<result/>'.repeat(11) + '</r>', 'result', ['inum'], 10)).toThrow(/more than 10/);
  });

  it('is linear on hostile input (many unclosed tags)', () => {
    const t0 = Date.now();
    expect(() => extractRecords('<result>' + '<a '.repeat(200_000), 'result', ['inum'])).toThrow(XmlRefused);
    expect(fieldsOf('<r>' + '<x>'.repeat(100_000) + '</r>')).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });
});

describe('Avaya keys and segment order', () => {
  it('parses inum, inum:, ucid: and ucid:#n', () => {
    expect(parseAvayaKey('800000000000101')).toEqual({ kind: 'inum', inum: '800000000000101' });
    expect(parseAvayaKey('inum:42')).toEqual({ kind: 'inum', inum: '42' });
    expect(parseAvayaKey('ucid:00001002071523456789')).toEqual({ kind: 'ucid', ucid: '00001002071523456789', segment: 'all' });
    expect(parseAvayaKey('ucid:U#3')).toEqual({ kind: 'ucid', ucid: 'U', segment: 3 });
    expect(() => parseAvayaKey('ucid:U#0')).toThrow();
    expect(() => parseAvayaKey('inum:')).toThrow();
  });

  it('orders numerically when every key is a number, else as strings; keyless last, stable', () => {
    expect(sortSegments([{ inum: 'a', order: '10' }, { inum: 'b', order: '9' }, { inum: 'c' }, { inum: 'd', order: '9' }]).map((s) => s.inum)).toEqual(['b', 'd', 'a', 'c']);
    expect(sortSegments([{ inum: 'a', order: '2026-01-01T10:00:00Z' }, { inum: 'b', order: '2026-01-01T09:00:00Z' }]).map((s) => s.inum)).toEqual(['b', 'a']);
    expect(AvayaStrategy.name).toBe('AvayaStrategy');
  });
});
