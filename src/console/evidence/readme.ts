import type { EvidenceInput } from './package.js';
import type { EvidenceSigner } from './signer.js';

/** README.txt of an evidence package: what is inside and how to check it offline with standard tools. */
export function evidenceReadme(input: EvidenceInput, signer: EvidenceSigner): string {
  return `custodian evidence package ${input.packageId}
Created ${input.createdAt.toISOString()} by ${input.principal.id} (tenant ${input.principal.tenantId})
Purpose of access: ${input.purpose.replace(/[\r\n]+/g, ' ')}
Recordings: ${input.items.length}

CONTENTS
  README.txt                         this file
  public-key.pem                     the gateway's Ed25519 signing public key
  recordings/<id>/metadata.json      the normalised catalog record (ids, copies, retention, legal hold)
  recordings/<id>/original.<ext>     the stored bytes, untouched (checked against the catalog SHA-256
                                     when it had one)
  recordings/<id>/playable.wav       PCM WAV any player opens, when the original needs transcoding
                                     (G.729, GSM, ...); manifest.json says "same_as": "original" otherwise
  recordings/<id>/audit-events.jsonl the gateway's audit events for the recording, one JSON object per
                                     line, including the export of this package (hash and prev_hash are
                                     links of the gateway's hash chain)
  manifest.json                      who, when, why; every file above with its SHA-256 and size (it names
                                     itself and the three files below, which are written from its bytes,
                                     under files_not_listed); problems (a copy that could not be read);
                                     the audit chain verdict at export time
  SHA256SUMS                         SHA-256 of every file above, in sha256sum format
  SHA256SUMS.sha256                  SHA-256 of SHA256SUMS (one line, sha256sum format)
  SHA256SUMS.sha256.sig              Ed25519 signature of SHA256SUMS.sha256 (64 raw bytes)

HOW TO VERIFY (Linux or macOS, in bash or zsh, with OpenSSL 3.0 or later; nothing else is needed)
  First get the gateway's key fingerprint from OUTSIDE this package: from the gateway itself
  (GET /api/v1/evidence/public-key, field public_key_sha256, with any credential it accepts), or the
  fingerprint its operator published. Whoever alters a package can also replace its key, re-sign it
  and rewrite every fingerprint written inside it, so nothing in the package can vouch for its key.
  This package claims its key's fingerprint is ${signer.fingerprint} (key id ${signer.keyId}):
  that claim proves nothing by itself; compare with the fingerprint you obtained, not with this one.

  Unzip the package into an empty directory and cd into it, then:
  1. The key is the gateway's, not one packed by someone else: its fingerprint
       openssl pkey -pubin -in public-key.pem -outform DER | sha256sum
     must print the fingerprint you obtained from the gateway or its operator (above).
  2. The signature:
       openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin -in SHA256SUMS.sha256 -sigfile SHA256SUMS.sha256.sig
     It prints "Signature Verified Successfully".
  3. The list of digests, then every file against it:
       sha256sum -c SHA256SUMS.sha256
       sha256sum -c SHA256SUMS
     (macOS: shasum -a 256 -c ...). Every line must say OK.
  4. Nothing was added: the package holds exactly the files SHA256SUMS lists, besides the three
     SHA256SUMS files (sha256sum -c above ignores files it does not list):
       find . -type f | sed 's|^\\./||' | grep -vxE 'SHA256SUMS(\\.sha256(\\.sig)?)?' | sort | diff - <(cut -c67- SHA256SUMS | sort)
     It prints nothing. A line "< name" is a file SHA256SUMS does not list (added to the package);
     "> name" a listed file that is missing.

If step 1 fails, the package was signed by another key, whatever it says about itself; if step 2
fails, the digests were altered or signed by another key; if step 3 fails, a file was altered,
replaced or is missing; if step 4 fails, a file was added. The package is genuine only when all four
pass. A package whose download was cut short is not a valid ZIP.
`;
}
