// oauth4webapi (panva) against a running tokengate: RFC 8414 discovery, then the client
// credentials grant (client_secret_basic) with a DPoP proof (RFC 9449 §5) signed by a fresh
// key pair; a `use_dpop_nonce` answer (§8) is retried once with the nonce the server gave.
// Prints one JSON line (token_type, scope, the key's RFC 7638 thumbprint, whether a nonce retry
// happened, the access token); exits 1 with the error's name on failure.
// Usage: node dpop_token.mjs ISSUER CLIENT_ID CLIENT_SECRET [ALG]
import * as oauth from 'oauth4webapi'

const [issuerUrl, clientId, clientSecret, alg = 'ES256'] = process.argv.slice(2)
const issuer = new URL(issuerUrl)
const insecure = { [oauth.allowInsecureRequests]: true } // plain HTTP on loopback only

try {
  const discovery = await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' })
  const as = await oauth.processDiscoveryResponse(issuer, discovery)
  const client = { client_id: clientId }
  const auth = oauth.ClientSecretBasic(clientSecret)
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair(alg))
  const params = new URLSearchParams({ scope: 'read' })
  const grant = () => oauth.clientCredentialsGrantRequest(as, client, auth, params, { ...insecure, DPoP })
  let retried = false
  let token
  try {
    token = await oauth.processClientCredentialsResponse(as, client, await grant())
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error
    retried = true // the handle has kept the server's DPoP-Nonce
    token = await oauth.processClientCredentialsResponse(as, client, await grant())
  }
  console.log(JSON.stringify({
    token_type: token.token_type, scope: token.scope, jkt: await DPoP.calculateThumbprint(),
    retried, access_token: token.access_token,
  }))
} catch (error) {
  console.log(JSON.stringify({ error: error.name, status: error.status ?? error.response?.status ?? null, code: error.error ?? null }))
  process.exit(1)
}
