from bemctl.cli import main

main()
