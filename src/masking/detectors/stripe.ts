import { type Detector, regexDetector } from '../detector.js';

/** Stripe: secret and restricted keys (live and test) and webhook signing secrets. Publishable keys (pk_) are public and left alone. */
export const stripeDetectors: Detector[] = [
  regexDetector({
    name: 'stripe-key',
    family: 'stripe',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,250}(?![A-Za-z0-9_])/g,
    anchors: ['_live_', '_test_'],
  }),
  regexDetector({
    name: 'stripe-webhook-secret',
    family: 'stripe',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_])whsec_[A-Za-z0-9]{24,250}(?![A-Za-z0-9_])/g,
    anchors: ['whsec_'],
  }),
];
