// oauth4webapi (panva) against a running tokengate: RFC 8414 discovery, then the client
// credentials grant authenticated with private_key_jwt (RFC 7523 §2.2), signed with the
// private JWK given. Prints one JSON line; exits 1 with the error's name on failure.
// Usage: node private_key_jwt.mjs ISSUER CLIENT_ID PRIVATE_JWK_JSON
import * as oauth from 'oauth4webapi'

const [issuerUrl, clientId, privateJwk] = process.argv.slice(2)
const issuer = new URL(issuerUrl)
const insecure = { [oauth.allowInsecureRequests]: true } // plain HTTP on loopback only

try {
  const discovery = await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' })
  const as = await oauth.processDiscoveryResponse(issuer, discovery)
  const jwk = JSON.parse(privateJwk)
  const key = await crypto.subtle.importKey(
    'jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  const auth = oauth.PrivateKeyJwt({ key, kid: jwk.kid })
  const client = { client_id: clientId }
  const params = new URLSearchParams({ scope: 'read' })
  const grant = await oauth.clientCredentialsGrantRequest(as, client, auth, params, insecure)
  const token = await oauth.processClientCredentialsResponse(as, client, grant)
  console.log(JSON.stringify({ token_type: token.token_type, scope: token.scope }))
} catch (error) {
  console.log(JSON.stringify({ error: error.name, status: error.status ?? error.response?.status ?? null, code: error.error ?? null }))
  process.exit(1)
}
