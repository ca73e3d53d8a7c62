import type { Detector } from './detector.js';
import { aiKeyDetectors } from './detectors/ai-keys.js';
import { awsDetectors } from './detectors/aws.js';
import { cardDetectors } from './detectors/cards.js';
import { contactDetectors } from './detectors/contact.js';
import { credentialDetectors } from './detectors/credentials.js';
import { githubDetectors } from './detectors/github.js';
import { gitlabDetectors } from './detectors/gitlab.js';
import { googleDetectors } from './detectors/google.js';
import { ibanDetectors } from './detectors/iban.js';
import { jwtDetectors } from './detectors/jwt.js';
import { networkDetectors } from './detectors/network.js';
import { npmDetectors } from './detectors/npm.js';
import { pemDetectors } from './detectors/pem.js';
import { slackDetectors } from './detectors/slack.js';
import { ssnDetectors } from './detectors/ssn.js';
import { stripeDetectors } from './detectors/stripe.js';

/** Every built-in detector, secrets first (a span two detectors find is credited to the first). */
export const builtInDetectors: readonly Detector[] = [
  ...pemDetectors,
  ...awsDetectors,
  ...githubDetectors,
  ...gitlabDetectors,
  ...slackDetectors,
  ...stripeDetectors,
  ...googleDetectors,
  ...aiKeyDetectors,
  ...npmDetectors,
  ...jwtDetectors,
  ...credentialDetectors,
  ...cardDetectors,
  ...ssnDetectors,
  ...ibanDetectors,
  ...contactDetectors,
  ...networkDetectors,
];

/** The names a config may use: each detector's name, its family, and the categories `secrets` and `pii`. */
export function selectDetectors(names: readonly string[], from: readonly Detector[] = builtInDetectors): { detectors: Detector[]; unknown: string[] } {
  const unknown = names.filter((n) => !from.some((d) => d.name === n || d.family === n) && n !== 'secrets' && n !== 'pii');
  const wanted = (d: Detector) =>
    names.some(
      (n) =>
        n === d.name ||
        n === d.family ||
        (n === 'secrets' && d.category === 'secret' && d.onByDefault) ||
        (n === 'pii' && d.category === 'pii' && d.onByDefault),
    );
  return { detectors: from.filter(wanted), unknown };
}
