import { Command } from 'commander';
import { sessionsEraseCommand } from './erase.js';
import { sessionsExportCommand } from './export.js';
import { sessionsListCommand } from './list.js';
import { sessionsReplayCommand } from './replay.js';
import { sessionsShowCommand } from './show.js';
import { sessionsVerifyCommand } from './verify.js';

/** `portcullis sessions …`: read the recordings of the gateway whose --config is given. */
export function sessionsCommand(): Command {
  const sessions = new Command('sessions').description('recorded sessions: list, show, replay, verify, export, erase');
  sessions.addCommand(sessionsListCommand());
  sessions.addCommand(sessionsShowCommand());
  sessions.addCommand(sessionsReplayCommand());
  sessions.addCommand(sessionsVerifyCommand());
  sessions.addCommand(sessionsExportCommand());
  sessions.addCommand(sessionsEraseCommand());
  return sessions;
}
