/**
 * A UTF-16 code unit with no UTF-8 form: a high surrogate not followed by a low one, or a low one
 * not preceded by a high one. JSON can carry one as an escape ("\ud800"); no database stores it
 * as given. (String.prototype.isWellFormed says the same, but TypeScript's lib for Node 20 lacks it.)
 */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
