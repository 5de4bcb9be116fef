// oauth4webapi (panva) calling a resource server protected by tokengate's library with a
// DPoP-bound token (RFC 9449 §7): the token comes from the client credentials grant with a
// proof (§5), then `protectedResourceRequest` with the same `DPoP()` handle signs a fresh proof
// per call. The proofs it sent are captured (`customFetch`) and sent again by hand: replayed,
// for another URL, and the token without its proof (as DPoP and as Bearer), which must all be
// refused. Prints one JSON line with each status and challenge; exits 1 on an unexpected error.
// Usage: node dpop_resource.mjs ISSUER CLIENT_ID CLIENT_SECRET RS_BASE_URL
import * as oauth from 'oauth4webapi'

const [issuerUrl, clientId, clientSecret, rsBase] = process.argv.slice(2)
const issuer = new URL(issuerUrl)
const insecure = { [oauth.allowInsecureRequests]: true } // plain HTTP on loopback only
const sent = [] // the headers of every resource request oauth4webapi made
const capture = (url, options) => {
  sent.push({ url, headers: options.headers })
  return fetch(url, options)
}

async function refused(url, headers) {
  const response = await fetch(url, { headers })
  return { status: response.status, challenge: response.headers.get('www-authenticate') }
}

try {
  const discovery = await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' })
  const as = await oauth.processDiscoveryResponse(issuer, discovery)
  const client = { client_id: clientId }
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
  const grant = await oauth.clientCredentialsGrantRequest(
    as, client, oauth.ClientSecretBasic(clientSecret), new URLSearchParams({ scope: 'read' }),
    { ...insecure, DPoP },
  )
  const token = await oauth.processClientCredentialsResponse(as, client, grant)
  const hello = new URL('/auth-api/hello', rsBase)
  const me = new URL('/auth-api/me', rsBase)
  const options = { ...insecure, DPoP, [oauth.customFetch]: capture }
  const first = await oauth.protectedResourceRequest(token.access_token, 'GET', hello, undefined, null, options)
  const second = await oauth.protectedResourceRequest(token.access_token, 'GET', me, undefined, null, options)
  const claims = await second.json()
  const captured = sent[0].headers
  console.log(JSON.stringify({
    token_type: token.token_type,
    jkt: await DPoP.calculateThumbprint(),
    ok: [first.status, second.status],
    message: (await first.json()).message,
    cnf: claims.cnf,
    authorization_scheme: captured.authorization.split(' ')[0],
    replayed: await refused(hello, captured),
    other_url: await refused(me, captured),
    without_proof: await refused(hello, { authorization: captured.authorization }),
    as_bearer: await refused(hello, { authorization: `Bearer ${token.access_token}` }),
  }))
} catch (error) {
  console.log(JSON.stringify({ error: error.name, message: error.message, status: error.status ?? error.response?.status ?? null }))
  process.exit(1)
}
