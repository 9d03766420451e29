#!/usr/bin/env node
import { main } from "../cli/Cli.ts"

main()
