import { type Detector, regexDetector } from '../detector.js';

/** AWS credentials: access key ids (by their documented prefixes), secret access keys and session tokens (by the name they come with). */

export const awsDetectors: Detector[] = [
  regexDetector({
    name: 'aws-access-key-id',
    family: 'aws',
    category: 'secret',
    confidence: 'high',
    minLength: 20,
    pattern: /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z2-7]{16}(?![A-Z0-9])/g,
    anchors: ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'AGPA', 'AIDA', 'AIPA', 'ANPA', 'ANVA', 'APKA', 'AROA', 'ASCA'],
  }),
  regexDetector({
    name: 'aws-secret-access-key',
    family: 'aws',
    category: 'secret',
    confidence: 'high',
    // The 40 characters after a name that says what they are (env files, ~/.aws/credentials, JSON from the CLI).
    pattern:
      /(?:aws_?secret_?access_?key|secret_?access_?key|secretaccesskey)["']?[ \t]{0,5}[:=][ \t]{0,5}["']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/dgi,
    anchorsIgnoringCase: ['secret'],
  }),
  regexDetector({
    name: 'aws-session-token',
    family: 'aws',
    category: 'secret',
    confidence: 'high',
    pattern: /(?:aws_?session_?token|sessiontoken|aws_?security_?token)["']?[ \t]{0,5}[:=][ \t]{0,5}["']?(?<secret>[A-Za-z0-9/+=]{100,4096})/dgi,
    anchorsIgnoringCase: ['token'],
  }),
  regexDetector({
    name: 'aws-session-token',
    family: 'aws',
    category: 'secret',
    confidence: 'high',
    // STS session tokens begin with these base64 prefixes, wherever they appear.
    pattern: /(?:FwoGZXIvYXdzE|IQoJb3JpZ2luX2Vj)[A-Za-z0-9/+=]{50,4096}/g,
    anchors: ['FwoGZXIvYXdzE', 'IQoJb3JpZ2luX2Vj'],
  }),
];
