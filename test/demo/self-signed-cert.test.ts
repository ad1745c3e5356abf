/** generateSelfSignedCert (for `sockeye serve --tls-self-signed`): a usable RSA-2048 certificate for the local names, nothing left on disk. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { generateSelfSignedCert } from '../../src/demo/self-signed-cert.js';

describe('generateSelfSignedCert', () => {
  it('makes a self-signed RSA-2048 certificate for localhost, the loopback addresses and the names given', async () => {
    // A private temp root: other test files making certificates at the same time cannot disturb the count.
    const root = mkdtempSync(join(tmpdir(), 'sockeye-cert-test-'));
    const { key, cert } = await generateSelfSignedCert({ names: ['demo.example', '10.1.2.3', '0.0.0.0'], tmpRoot: root });
    const x = new X509Certificate(cert);
    const san = (x.subjectAltName ?? '').split(', ');
    for (const entry of ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1', 'DNS:demo.example', 'IP Address:10.1.2.3']) assert.ok(san.includes(entry), `${entry} in ${x.subjectAltName}`);
    assert.ok(!san.includes('IP Address:0.0.0.0'), 'the wildcard address is no name');
    assert.equal(x.issuer, x.subject);
    assert.ok(x.verify(x.publicKey), 'signed by its own key');
    assert.ok(x.checkPrivateKey(createPrivateKey(key)));
    assert.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.ok(new Date(x.validTo).getTime() > Date.now() + 7 * 86400_000);
    assert.deepEqual(readdirSync(root), [], 'its temp dir is removed');
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses names that are not host names or addresses', async () => {
    for (const bad of ['a b', 'x,DNS:evil', '', 'a/b']) await assert.rejects(generateSelfSignedCert({ names: [bad] }), TypeError, JSON.stringify(bad));
  });
});
