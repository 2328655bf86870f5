// `/api/v1/docs`: Swagger UI (swagger-ui-dist from npm, bundled: nothing from a CDN) on
// this server's `/api/v1/openapi.json`, with try-it-out and the "Authorize" button for
// a bearer token. A signed-in portal or console session is offered as that token.
import 'swagger-ui-dist/swagger-ui.css';
import './docs.css';

import SwaggerUI from 'swagger-ui-dist/swagger-ui-es-bundle.js';

const root = document.getElementById('app');
root.id = 'swagger-ui';
const main = document.createElement('main');
document.body.insertBefore(main, root);
main.appendChild(root);

const ui = SwaggerUI({
  url: '/api/v1/openapi.json',
  domNode: root,
  deepLinking: true,
  tryItOutEnabled: true,
  persistAuthorization: false,
  // The spec's own validator badge would call a public service.
  validatorUrl: null,
});

try {
  const session = JSON.parse(localStorage.getItem('panocast.session') || 'null');
  if (session?.access_token && session.expires_at > Date.now()) {
    ui.preauthorizeApiKey('bearer', session.access_token);
  }
} catch {
  // No session to offer.
}
