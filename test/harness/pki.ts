// A throwaway certificate authority for the local control plane: the apiserver's serving
// certificate and client certificates (CN = user, O = groups) are issued from it.
import { webcrypto, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as x509.CryptoProvider extends { set(value: infer C): unknown } ? C : never);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const VALIDITY_MS = 7 * 24 * 3600 * 1000;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface CertificateAuthority extends PemPair {
  certificate: x509.X509Certificate;
  privateKey: CryptoKey;
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

function validity(): { notBefore: Date; notAfter: Date; serialNumber: string } {
  const now = Date.now();
  // Backdated a little so a cert is valid the moment it is written.
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + VALIDITY_MS), serialNumber: randomBytes(8).toString('hex') };
}

export async function createCertificateAuthority(): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    ...validity(),
    name: 'CN=nestjs-lease-election test CA',
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { certificate, privateKey: keys.privateKey, certPem: certificate.toString('pem'), keyPem: await keyToPem(keys.privateKey) };
}

export function saveCertificateAuthority(ca: CertificateAuthority, dir: string): void {
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'ca.key'), ca.keyPem, { mode: 0o600 });
}

export async function loadCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  const certPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const keyPem = readFileSync(join(dir, 'ca.key'), 'utf8');
  const der = Buffer.from(keyPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, true, ['sign']);
  return { certificate: new x509.X509Certificate(certPem), privateKey, certPem, keyPem };
}

export interface CertificateRequest {
  commonName: string;
  organizations?: string[];
  /** Makes a serving certificate for these loopback names instead of a client one. */
  serverNames?: { dns: string[]; ips: string[] };
}

export async function issueCertificate(ca: CertificateAuthority, request: CertificateRequest): Promise<PemPair> {
  const keys = await generateKeys();
  const subject = [`CN=${request.commonName}`, ...(request.organizations ?? []).map((o) => `O=${o}`)].join(', ');
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
  ];
  if (request.serverNames) {
    extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]));
    extensions.push(new x509.SubjectAlternativeNameExtension([
      ...request.serverNames.dns.map((value) => ({ type: 'dns' as const, value })),
      ...request.serverNames.ips.map((value) => ({ type: 'ip' as const, value })),
    ]));
  } else {
    extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]));
  }
  const certificate = await x509.X509CertificateGenerator.create({
    ...validity(),
    subject,
    issuer: ca.certificate.subject,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions,
  });
  return { certPem: certificate.toString('pem'), keyPem: await keyToPem(keys.privateKey) };
}

/** The key pair the apiserver signs and verifies service-account tokens with. */
export function serviceAccountKeys(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
